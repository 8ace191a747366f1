//! A Byzantine validator: it holds a real validator key of the set (its own
//! node stopped), connects to every peer as that validator, and sends
//! valid-looking garbage on every channel as fast as the connections take
//! it, until told to stop.
//!
//! What it sends, each kind counted under the name in brackets:
//! - consensus, signed with the validator key: PREPAREs and COMMITs for the
//!   current view and sequences inside the window with random block hashes,
//!   conflicting with each other (`conflicting_votes`); votes for far-future
//!   views and sequences far beyond the window (`far_future_votes`);
//!   VIEW-CHANGEs for far-future views (`far_future_view_changes`); one
//!   valid COMMIT repeated byte for byte (`duplicates`);
//! - consensus, unsigned or broken: well-formed votes with random bytes as
//!   signature, shaped so that checking them costs a full verification
//!   (`bad_signatures`); random bytes (`malformed`); valid encodings cut
//!   short (`truncated`); once per [`MAX_FRAME_INTERVAL`], a frame of
//!   exactly the transport's consensus frame limit (`max_frames`) and, on a
//!   stream of its own, a length prefix one byte over it
//!   (`oversized_frames`);
//! - gossip: transaction frames that do not decode (`gossip_undecodable`)
//!   and validly signed transfers for another chain id
//!   (`gossip_wrong_chain`);
//! - sync: block-sync requests for the whole height range
//!   (`sync_huge`), for random ranges (`sync_random`) and malformed ones
//!   (`sync_malformed`), [`SYNC_IN_FLIGHT`] at a time per peer; answers are
//!   counted (`sync_responses`, `sync_response_bytes`, `sync_unanswered`).
//!
//! The current view and sequence are learnt from the honest validators'
//! own consensus messages, which they send to this one as to any peer
//! (`peer_messages`); until one arrives, view 0 and sequence 0.
//! Connections are counted too: `connections`, `reconnects`,
//! `connections_dropped` (closed by the peer while attacking),
//! `dial_failures`, `streams_reopened`, and `bytes_sent` per channel.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use quinn::{Connection, Endpoint, SendStream};
use stele_client::{Signer, TxBuilder};
use stele_consensus::{
    CheckpointProof, Commit, Message, MessageLimits, Prepare, SignedMessage, ViewChange,
};
use stele_node::net::{Channel, NetConfig, PeerInfo, testing};
use stele_node::sync::SyncRequest;
use stele_types::codec::Encode;
use stele_types::{Address, Hash, SecretKey, Signature, ValidatorSet};
use tokio::task::JoinSet;

use crate::load::Rng;

/// How often the frame at the size limit (and the oversized header) goes
/// to each peer: 32 MiB a second per peer is line rate enough on loopback.
pub const MAX_FRAME_INTERVAL: Duration = Duration::from_secs(1);
/// Block-sync requests open at once per peer (a node serves 8).
pub const SYNC_IN_FLIGHT: usize = 4;
/// Sequences above the highest seen that count as inside the window (the
/// node's window is 32).
const WINDOW_SEQS: u64 = 16;
/// How far beyond the current view and sequence the far-future messages go.
const FAR_VIEWS: u64 = 1_000_000;
const FAR_SEQS: u64 = 1 << 40;
/// Messages of each kind per round (one write per channel per round).
const CONFLICTING_PER_ROUND: usize = 8;
const FAR_FUTURE_PER_ROUND: usize = 2;
const BAD_SIGNATURES_PER_ROUND: usize = 8;
const DUPLICATES_PER_ROUND: usize = 64;
const MALFORMED_PER_ROUND: usize = 16;
const GOSSIP_UNDECODABLE_PER_ROUND: usize = 32;
const GOSSIP_WRONG_CHAIN_PER_ROUND: usize = 4;
/// Random garbage is at most this long.
const MALFORMED_BYTES_MAX: u64 = 512;
/// Time allowed to connect and prove the key, and for one sync answer.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
const SYNC_TIMEOUT: Duration = Duration::from_secs(5);
/// Wait after a failed dial.
const REDIAL_DELAY: Duration = Duration::from_millis(200);
/// Largest sync answer read (the node's limit).
const SYNC_RESPONSE_BYTES_MAX: usize = 64 << 20;

/// Connects to each peer as validator `key` (a real validator key of the
/// set, whose own node is stopped) and sends valid-looking garbage on every
/// channel as fast as the connections take it, until `stop`. Returns the
/// counters named in the module documentation.
pub async fn run(
    key: SecretKey,
    chain_id: u64,
    validators: ValidatorSet,
    peers: Vec<PeerInfo>,
    stop: Arc<AtomicBool>,
) -> BTreeMap<String, u64> {
    let tally = Arc::new(Tally::default());
    let Some(me) = validators
        .index_of(&key.address())
        .and_then(|i| u32::try_from(i).ok())
    else {
        tally.add("not_a_validator", 1);
        return tally.take();
    };
    let bind = match peers.first().map(|p| p.socket) {
        Some(SocketAddr::V6(_)) => SocketAddr::from(([0u16; 8], 0)),
        _ => SocketAddr::from(([0u8; 4], 0)),
    };
    let endpoint = match Endpoint::client(bind) {
        Ok(e) => e,
        Err(_) => {
            tally.add("no_endpoint", 1);
            return tally.take();
        }
    };
    let limits = MessageLimits {
        message_bytes_max: NetConfig::default().consensus_frame_bytes_max,
        payload_bytes_max: NetConfig::default().consensus_frame_bytes_max,
        validators_max: validators.len(),
        window_seqs_max: 1 << 10,
    };
    let ctx = Arc::new(Ctx {
        key,
        me,
        chain_id,
        validators,
        limits,
        endpoint,
        stop,
        tally,
        view: AtomicU64::new(0),
        seq: AtomicU64::new(0),
    });
    let mut tasks = JoinSet::new();
    for (i, peer) in peers.into_iter().enumerate() {
        tasks.spawn(attack_peer(ctx.clone(), peer, i as u64));
    }
    while tasks.join_next().await.is_some() {}
    ctx.endpoint.close(0u32.into(), b"done");
    ctx.tally.take()
}

/// Counters by name, shared by every task of the attack.
#[derive(Debug, Default)]
struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        // Every update is one addition: a poisoned map is still right.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add(&self, name: &str, n: u64) {
        *self.lock().entry(name.to_string()).or_default() += n;
    }

    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.lock())
    }
}

/// What the attack's tasks share.
struct Ctx {
    key: SecretKey,
    /// This validator's index in the set.
    me: u32,
    chain_id: u64,
    validators: ValidatorSet,
    /// For decoding what the peers send.
    limits: MessageLimits,
    endpoint: Endpoint,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    /// Highest view and sequence seen in the peers' messages.
    view: AtomicU64,
    seq: AtomicU64,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn sign(&self, message: Message) -> Vec<u8> {
        // The cluster runs one epoch, 0.
        let signature = self.key.sign_digest(&message.digest(self.chain_id, 0));
        self.signed_as(message, signature)
    }

    fn signed_as(&self, message: Message, signature: Signature) -> Vec<u8> {
        SignedMessage {
            epoch: 0,
            message,
            signer: self.me,
            signature,
        }
        .to_bytes()
    }

    /// Learns the view and sequence from an honest validator's message.
    fn observe(&self, m: &Message) {
        let (view, seq) = match m {
            Message::PrePrepare(p) => (p.view, p.seq),
            Message::Prepare(p) => (p.view, p.seq),
            Message::Commit(c) => (c.view, c.seq),
            Message::Checkpoint(c) => (0, c.seq),
            Message::NewView(nv) => (nv.view, 0),
            Message::ViewChange(_) => return,
        };
        self.view.fetch_max(view, Ordering::Relaxed);
        self.seq.fetch_max(seq, Ordering::Relaxed);
    }
}

/// Connects to `peer` again and again until `stop`, flooding each
/// connection while it lasts.
async fn attack_peer(ctx: Arc<Ctx>, peer: PeerInfo, seed: u64) {
    let mut rng = Rng::new(seed ^ (u64::from(std::process::id()) << 20));
    let mut connected_before = false;
    while !ctx.stopped() {
        let dial = testing::dial_as(
            &ctx.endpoint,
            &ctx.key,
            ctx.chain_id,
            &ctx.validators,
            &peer,
        );
        let conn = match tokio::time::timeout(DIAL_TIMEOUT, dial).await {
            Ok(Ok(conn)) => conn,
            _ => {
                ctx.tally.add("dial_failures", 1);
                tokio::time::sleep(REDIAL_DELAY).await;
                continue;
            }
        };
        ctx.tally.add(
            if connected_before {
                "reconnects"
            } else {
                "connections"
            },
            1,
        );
        connected_before = true;
        let mut helpers = JoinSet::new();
        helpers.spawn(listen(ctx.clone(), conn.clone()));
        for _ in 0..SYNC_IN_FLIGHT {
            helpers.spawn(sync_flood(ctx.clone(), conn.clone(), rng.next_u64()));
        }
        flood(&ctx, &conn, &mut rng).await;
        if !ctx.stopped() {
            ctx.tally.add("connections_dropped", 1);
        }
        conn.close(0u32.into(), b"done");
        helpers.shutdown().await;
    }
}

/// Reads the peer's consensus streams to learn its view and sequence, and
/// drains its other streams so that its sends are never held up.
async fn listen(ctx: Arc<Ctx>, conn: Connection) {
    let max = ctx.limits.message_bytes_max;
    let mut streams = JoinSet::new();
    while let Ok(mut recv) = conn.accept_uni().await {
        let ctx = ctx.clone();
        streams.spawn(async move {
            let mut first = [0u8; 1];
            if recv.read_exact(&mut first).await.is_err() {
                return;
            }
            let consensus = first[0] == Channel::Consensus as u8;
            while let Ok(Some(payload)) = testing::read_frame(&mut recv, max).await {
                if !consensus {
                    continue;
                }
                ctx.tally.add("peer_messages", 1);
                if let Ok(m) = SignedMessage::decode(&payload, &ctx.limits) {
                    ctx.observe(&m.message);
                }
            }
        });
    }
}

/// Writes rounds of garbage on the consensus and gossip channels until
/// `stop` or until the connection closes.
async fn flood(ctx: &Ctx, conn: &Connection, rng: &mut Rng) {
    let mut consensus: Option<SendStream> = None;
    let mut gossip: Option<SendStream> = None;
    let duplicate = ctx.sign(Message::Commit(Commit {
        view: ctx.view.load(Ordering::Relaxed),
        seq: ctx.seq.load(Ordering::Relaxed) + 1,
        block_hash: random_hash(rng),
    }));
    let mut wrong_chain = WrongChain::new(ctx.chain_id);
    let mut last_max_frame: Option<Instant> = None;
    while !ctx.stopped() && conn.close_reason().is_none() {
        let round = consensus_round(ctx, rng, &duplicate);
        send(ctx, conn, &mut consensus, Channel::Consensus, round).await;
        let round = gossip_round(rng, &mut wrong_chain);
        send(ctx, conn, &mut gossip, Channel::Gossip, round).await;
        if last_max_frame.is_none_or(|t| t.elapsed() >= MAX_FRAME_INTERVAL) {
            last_max_frame = Some(Instant::now());
            let frame = max_frame(rng);
            send(ctx, conn, &mut consensus, Channel::Consensus, frame).await;
            oversized_frame(ctx, conn).await;
        }
        // Signing is most of a round's work: let the other tasks run.
        tokio::task::yield_now().await;
    }
}

/// Writes one round of `(kind, payload)` on `channel`, opening its stream
/// first if needed, and counts what went out. A failed write drops the
/// stream (it is reopened next round).
async fn send(
    ctx: &Ctx,
    conn: &Connection,
    stream: &mut Option<SendStream>,
    channel: Channel,
    round: Vec<(&'static str, Vec<u8>)>,
) {
    if stream.is_none() {
        match testing::open_channel(conn, channel).await {
            Ok(s) => *stream = Some(s),
            Err(_) => return,
        }
    }
    let Some(s) = stream.as_mut() else {
        return;
    };
    let payloads: Vec<&[u8]> = round.iter().map(|(_, p)| p.as_slice()).collect();
    if testing::write_frames(s, &payloads).await.is_err() {
        *stream = None;
        if conn.close_reason().is_none() {
            ctx.tally.add("streams_reopened", 1);
        }
        return;
    }
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut bytes = 0;
    for (kind, payload) in &round {
        *counts.entry(kind).or_default() += 1;
        bytes += payload.len() as u64 + 4;
    }
    for (kind, n) in counts {
        ctx.tally.add(kind, n);
    }
    ctx.tally
        .add(&format!("bytes_sent_{}", channel.name()), bytes);
}

/// One round of consensus garbage (see the module documentation).
fn consensus_round(ctx: &Ctx, rng: &mut Rng, duplicate: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let view = ctx.view.load(Ordering::Relaxed);
    let seq = ctx.seq.load(Ordering::Relaxed);
    let mut out = Vec::new();
    for i in 0..CONFLICTING_PER_ROUND {
        let seq = seq + 1 + rng.below(WINDOW_SEQS);
        let m = vote(i % 2 == 0, view, seq, random_hash(rng), random_hash(rng));
        out.push(("conflicting_votes", ctx.sign(m)));
    }
    for i in 0..FAR_FUTURE_PER_ROUND {
        let far_view = view + FAR_VIEWS + rng.below(FAR_VIEWS);
        let far_seq = seq + FAR_SEQS + rng.below(FAR_SEQS);
        let m = vote(
            i % 2 == 0,
            far_view,
            far_seq,
            random_hash(rng),
            random_hash(rng),
        );
        out.push(("far_future_votes", ctx.sign(m)));
        // The genesis checkpoint needs no votes: the smallest VIEW-CHANGE.
        let m = Message::ViewChange(ViewChange {
            new_view: far_view,
            checkpoint: CheckpointProof {
                seq: 0,
                block_hash: random_hash(rng),
                votes: Vec::new(),
            },
            prepared: Vec::new(),
        });
        out.push(("far_future_view_changes", ctx.sign(m)));
    }
    for i in 0..BAD_SIGNATURES_PER_ROUND {
        let m = vote(
            i % 2 == 0,
            view,
            seq + 1,
            random_hash(rng),
            random_hash(rng),
        );
        out.push((
            "bad_signatures",
            ctx.signed_as(m, costly_bad_signature(rng)),
        ));
    }
    for _ in 0..DUPLICATES_PER_ROUND {
        out.push(("duplicates", duplicate.to_vec()));
    }
    for _ in 0..MALFORMED_PER_ROUND {
        let len = 1 + rng.below(MALFORMED_BYTES_MAX) as usize;
        out.push(("malformed", random_bytes(rng, len)));
        // A signed vote cut anywhere short of its end.
        let whole = duplicate;
        let cut = rng.below(whole.len() as u64) as usize;
        out.push(("truncated", whole[..cut].to_vec()));
    }
    out
}

/// A PREPARE (`prepare`) or a COMMIT.
fn vote(prepare: bool, view: u64, seq: u64, block_hash: Hash, parent: Hash) -> Message {
    if prepare {
        Message::Prepare(Prepare {
            view,
            seq,
            block_hash,
            parent,
        })
    } else {
        Message::Commit(Commit {
            view,
            seq,
            block_hash,
        })
    }
}

/// Random bytes that pass a signature's form checks (`r` below the group
/// order, low `s`, `v` of 0 or 1), so rejecting them costs a full check.
fn costly_bad_signature(rng: &mut Rng) -> Signature {
    let mut bytes = [0u8; 65];
    bytes[..64].copy_from_slice(&random_bytes(rng, 64));
    // r below 2^255 and s below 2^254: under the order and its half.
    bytes[0] &= 0x7f;
    bytes[32] &= 0x3f;
    bytes[64] = (rng.next_u64() & 1) as u8;
    Signature(bytes)
}

/// A frame of exactly the transport's consensus limit: the head of a
/// PRE-PREPARE whose payload length runs to the end, over any payload
/// limit.
fn max_frame(rng: &mut Rng) -> Vec<(&'static str, Vec<u8>)> {
    let len = NetConfig::default().consensus_frame_bytes_max;
    let mut frame = Vec::with_capacity(len);
    frame.push(1); // PRE-PREPARE
    frame.extend_from_slice(&random_bytes(rng, 8 + 8 + 32 + 32));
    let rest = len.saturating_sub(frame.len() + 4);
    frame.extend_from_slice(&u32::try_from(rest).unwrap_or(u32::MAX).to_le_bytes());
    frame.resize(len, 0);
    vec![("max_frames", frame)]
}

/// A consensus stream whose first frame claims one byte over the limit.
async fn oversized_frame(ctx: &Ctx, conn: &Connection) {
    let Ok(mut s) = testing::open_channel(conn, Channel::Consensus).await else {
        return;
    };
    let len = NetConfig::default().consensus_frame_bytes_max + 1;
    let head = u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes();
    if s.write_all(&head).await.is_ok() && s.finish().is_ok() {
        ctx.tally.add("oversized_frames", 1);
    }
}

/// Validly signed transfers for the wrong chain, from a key of their own.
struct WrongChain {
    signer: Signer,
    chain_id: u64,
    nonce: u64,
}

impl WrongChain {
    fn new(chain_id: u64) -> WrongChain {
        WrongChain {
            signer: Signer::new(SecretKey::generate()),
            chain_id: chain_id ^ 0x5ee1,
            nonce: 0,
        }
    }

    fn next(&mut self) -> Vec<u8> {
        let tx = TxBuilder::new(self.chain_id)
            .nonce(self.nonce)
            .gas_limit(100_000)
            .transfer(Address::default(), 1);
        self.nonce += 1;
        self.signer.sign(tx).1
    }
}

/// One round of gossip garbage. A gossip frame is `0x00 || raw
/// transaction` or `0x01 || sender || raw transaction`.
fn gossip_round(rng: &mut Rng, wrong_chain: &mut WrongChain) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..GOSSIP_UNDECODABLE_PER_ROUND {
        let len = 1 + rng.below(MALFORMED_BYTES_MAX) as usize;
        let mut frame = match i % 3 {
            0 => vec![0],             // a transaction that does not decode
            1 => vec![1, 7, 7, 7, 7], // a sender cut short
            _ => vec![0x80],          // an unknown tag
        };
        if i % 3 != 1 {
            frame.extend_from_slice(&random_bytes(rng, len));
        }
        out.push(("gossip_undecodable", frame));
    }
    for _ in 0..GOSSIP_WRONG_CHAIN_PER_ROUND {
        let mut frame = vec![0];
        frame.extend_from_slice(&wrong_chain.next());
        out.push(("gossip_wrong_chain", frame));
    }
    out
}

/// Block-sync requests one after another on `conn` until `stop` or until
/// the connection closes, the kinds in turn (a malformed one first), so
/// that every peer gets every kind however few requests a slow run makes.
async fn sync_flood(ctx: Arc<Ctx>, conn: Connection, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut turn = 0u64;
    while !ctx.stopped() && conn.close_reason().is_none() {
        let (kind, request) = sync_garbage(&mut rng, turn);
        turn += 1;
        let answer = tokio::time::timeout(
            SYNC_TIMEOUT,
            // Above the flood's streams: on this one connection, the
            // flood's queued bytes would otherwise go first.
            testing::sync_request_at(&conn, &request, SYNC_RESPONSE_BYTES_MAX, i32::MAX),
        )
        .await;
        ctx.tally.add(kind, 1);
        match answer {
            Ok(Ok(response)) => {
                ctx.tally.add("sync_responses", 1);
                ctx.tally.add("sync_response_bytes", response.len() as u64);
            }
            _ => ctx.tally.add("sync_unanswered", 1),
        }
    }
}

/// A block-sync request by `turn`: one that does not decode, the whole
/// height range, or a random range.
fn sync_garbage(rng: &mut Rng, turn: u64) -> (&'static str, Vec<u8>) {
    match (turn + 2) % 3 {
        0 => {
            let request = SyncRequest {
                from: 1,
                to: u64::MAX,
            };
            ("sync_huge", request.encode())
        }
        1 => {
            let from = 1 + rng.below(u64::MAX - 1);
            let to = from.saturating_add(rng.next_u64());
            ("sync_random", SyncRequest { from, to }.encode())
        }
        _ => {
            let request = match rng.below(3) {
                0 => SyncRequest { from: 0, to: 5 }.encode(),
                1 => SyncRequest { from: 9, to: 3 }.encode(),
                _ => random_bytes(rng, 15),
            };
            ("sync_malformed", request)
        }
    }
}

fn random_hash(rng: &mut Rng) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(&random_bytes(rng, 32));
    Hash(h)
}

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

//! Transactions between validators: the gossip wire format, the router
//! that takes gossip off the consensus path, and batched admission with
//! bounded concurrent signature checks.

use std::sync::Arc;

use stele_types::codec::Encode;
use stele_types::{Address, keccak256};
use tokio::sync::{Semaphore, mpsc};
use tracing::debug;

use super::Shared;
use crate::mempool::AdmitError;
use crate::metrics::PeerGarbage;
use crate::net::{Channel, Inbound, InboundCharge};

/// Concurrent signature checks of gossiped transactions; more wait in the
/// gossip queue.
const GOSSIP_VERIFY_TASKS_MAX: usize = 64;
/// Most pending transactions, and their bytes, offered again to a peer
/// that (re)connects.
const REGOSSIP_TXS_MAX: usize = 4_096;
const REGOSSIP_BYTES_MAX: usize = 16 << 20;
/// Gossiped transactions waiting for a signature check; beyond, newcomers
/// are dropped and counted.
pub(super) const GOSSIP_QUEUE_MAX: usize = 16_384;

/// Sends gossiped transactions from the network straight to admission and
/// everything else to the driver, so a transaction gossiped while the
/// driver waits on an execution or a commit reaches the mempool (and the
/// next proposal) without waiting for it. Consensus messages keep the
/// network's back-pressure; gossip beyond the admission queue is dropped
/// and counted. Ends as soon as the network or the driver goes away (it
/// holds the admission queue, which keeps the node's state open).
pub(super) async fn route_inbound(
    mut inbound: mpsc::Receiver<Inbound>,
    driver: mpsc::Sender<Inbound>,
    gossip: mpsc::Sender<GossipItem>,
    gossip_dropped: prometheus_client::metrics::counter::Counter,
) {
    loop {
        let ev = tokio::select! {
            ev = inbound.recv() => match ev {
                Some(ev) => ev,
                None => return,
            },
            () = driver.closed() => return,
        };
        match ev {
            Inbound::Message {
                channel: Channel::Gossip,
                payload,
                from,
                charge,
            } => {
                if gossip.try_send((from, payload, charge)).is_err() {
                    gossip_dropped.inc();
                }
            }
            other => {
                if driver.send(other).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A gossiped transaction waiting for admission, with its sender's
/// queued-bytes charge (given back once admission is done with it).
pub(super) type GossipItem = (Address, Vec<u8>, InboundCharge);

/// Why admission refused a gossiped transaction, if the reason marks it as
/// garbage: an honest validator gossips only transactions it decoded and
/// verified itself. Other refusals (nonce, funds, already known) happen to
/// honest peers too and are not counted.
fn gossip_garbage(e: &AdmitError) -> Option<PeerGarbage> {
    match e {
        AdmitError::TooLarge { .. } | AdmitError::Malformed(_) => {
            Some(PeerGarbage::GossipUndecodable)
        }
        AdmitError::WrongChain { .. } => Some(PeerGarbage::GossipWrongChain),
        AdmitError::BadSignature(_) | AdmitError::NotSignedBy(_) => {
            Some(PeerGarbage::GossipBadSignature)
        }
        _ => None,
    }
}

/// Admits gossiped transactions, at most [`GOSSIP_VERIFY_TASKS_MAX`]
/// signature checks at a time; the rest wait in the queue rather than
/// being dropped, so a burst of transactions submitted to backups still
/// reaches the primary. Ends when the driver and the router drop the queue.
///
/// A transaction new to this node is gossiped on unless both
/// this node and the peer are validators: validators are connected to each
/// other, so a validator's gossip reaches every validator in one hop, but a
/// follower (a full node, or a validator that left the set) may know none
/// of the validators that joined since its configuration was written, and
/// full nodes may reach the validators only through each other. A
/// transaction this node already holds is dropped before its signature is
/// checked, which ends the flood.
pub(super) async fn admit_gossip(shared: Arc<Shared>, mut rx: mpsc::Receiver<GossipItem>) {
    let slots = Arc::new(Semaphore::new(GOSSIP_VERIFY_TASKS_MAX));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        // Transactions that queued meanwhile share the task: one hand-off
        // to a blocking thread per batch, not per transaction.
        let mut batch = vec![first];
        while batch.len() < GOSSIP_VERIFY_BATCH_MAX {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            let mut items = Vec::with_capacity(batch.len());
            let mut froms = Vec::with_capacity(batch.len());
            let mut relay = Vec::with_capacity(batch.len());
            let metrics = &shared.metrics;
            for (from, payload, _) in &batch {
                match GossipTx::decode(payload) {
                    Some(tx) if shared.is_pending(&keccak256(tx.raw)) => {}
                    Some(tx) => {
                        items.push((tx.raw, tx.sender));
                        froms.push(from);
                        relay
                            .push(!shared.net.is_validator() || !shared.net.is_validator_key(from));
                    }
                    None => {
                        metrics.record_peer_garbage(PeerGarbage::GossipUndecodable);
                        debug!(%from, "malformed gossip");
                    }
                }
            }
            for (from, result) in froms.into_iter().zip(shared.admit_batch(&items, &relay)) {
                if let Err(e) = result {
                    if let Some(garbage) = gossip_garbage(&e) {
                        metrics.record_peer_garbage(garbage);
                    }
                    debug!(%from, error = %e, "gossiped transaction not admitted");
                }
            }
            drop(permit);
            // `batch`, dropped last, held its senders' queued-bytes
            // charges through admission.
        });
    }
}

/// A transaction on the gossip channel: `0x00 || raw`, or
/// `0x01 || sender || raw` (20-byte address) from a validator that
/// recovered the sender, so the receiver checks the signature against the
/// sender's table ([`SenderKeys`]) instead of recovering it. A wrong sender
/// gets the transaction rejected, as from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct GossipTx<'a> {
    pub(super) sender: Option<Address>,
    pub(super) raw: &'a [u8],
}

impl<'a> GossipTx<'a> {
    pub(super) fn encode(&self) -> Arc<[u8]> {
        let mut out = Vec::with_capacity(21 + self.raw.len());
        match &self.sender {
            Some(sender) => {
                out.push(1);
                out.extend_from_slice(sender.as_bytes());
            }
            None => out.push(0),
        }
        out.extend_from_slice(self.raw);
        Arc::from(out)
    }

    /// `None` for an unknown tag or a truncated sender; the transaction
    /// bytes are checked by admission.
    fn decode(payload: &'a [u8]) -> Option<GossipTx<'a>> {
        match payload.split_first()? {
            (0, raw) => Some(GossipTx { sender: None, raw }),
            (1, rest) => {
                let (sender, raw) = rest.split_first_chunk::<20>()?;
                Some(GossipTx {
                    sender: Some(Address(*sender)),
                    raw,
                })
            }
            _ => None,
        }
    }
}

/// Offers the pending transactions to a peer that (re)connected: gossip
/// goes once, to the peers connected then, so one admitted while this peer
/// was cut off would wait here until this validator leads. All of them,
/// gapped ones too: this validator's state may lag the peer's, and the
/// peer's admission sorts them out.
pub(super) fn offer_pending(shared: &Shared, peer: &Address) {
    let pending = shared
        .mempool()
        .pending(REGOSSIP_TXS_MAX, REGOSSIP_BYTES_MAX);
    for tx in pending {
        let raw = tx.to_bytes();
        let payload = GossipTx {
            sender: None,
            raw: &raw,
        };
        shared.net.send(peer, Channel::Gossip, payload.encode());
    }
}

/// Gossiped transactions one verification task takes at most.
const GOSSIP_VERIFY_BATCH_MAX: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_payloads_round_trip_and_reject_bad_framing() {
        let sender = Address([7; 20]);
        for tx in [
            GossipTx {
                sender: Some(sender),
                raw: b"tx bytes",
            },
            GossipTx {
                sender: None,
                raw: b"tx bytes",
            },
            GossipTx {
                sender: None,
                raw: b"",
            },
        ] {
            let bytes = tx.encode();
            assert_eq!(GossipTx::decode(&bytes), Some(tx));
        }
        let named = GossipTx {
            sender: Some(sender),
            raw: b"",
        }
        .encode();
        assert_eq!(&named[..], &[&[1u8][..], &[7; 20]].concat()[..]);
        assert_eq!(GossipTx::decode(&named[..20]), None);
        assert_eq!(GossipTx::decode(&[]), None);
        assert_eq!(GossipTx::decode(&[2, 0, 0]), None);
    }
}

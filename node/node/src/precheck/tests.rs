//! Tests of the pre-check: budgets, offences, the pipeline, bounds.

use super::*;
use stele_consensus::{
    CheckpointProof, Commit, Config, NewView, Prepare, PreparedCertificate, ViewChange,
};
use stele_types::codec::Encode;
use stele_types::{SecretKey, Validator};

const CHAIN: u64 = 5;
const HORIZON: Horizon = Horizon {
    views_ahead: 8,
    window_seqs: 32,
};

fn keys() -> Vec<SecretKey> {
    (1..=4u8)
        .map(|i| SecretKey::from_bytes(&[i; 32]).unwrap())
        .collect()
}

fn set(keys: &[SecretKey]) -> ValidatorSet {
    let mut v: Vec<Validator> = keys
        .iter()
        .map(|k| Validator {
            address: k.address(),
            public_key: k.public_key(),
            power: 1,
        })
        .collect();
    v.sort_by_key(|v| v.address);
    ValidatorSet::new(v).unwrap()
}

fn signed(keys: &[SecretKey], set: &ValidatorSet, signer: usize, message: Message) -> Vec<u8> {
    let key = &keys[signer];
    let index = set.index_of(&key.address()).unwrap();
    SignedMessage {
        epoch: 0,
        signature: key.sign_digest(&message.digest(CHAIN, 0)),
        signer: u32::try_from(index).unwrap(),
        message,
    }
    .to_bytes()
}

fn prepare(view: u64, seq: u64) -> Message {
    Message::Prepare(Prepare {
        view,
        seq,
        block_hash: keccak256(&seq.to_le_bytes()),
        parent: Hash([0; 32]),
    })
}

fn commit(view: u64, seq: u64) -> Message {
    Message::Commit(Commit {
        view,
        seq,
        block_hash: keccak256(&seq.to_le_bytes()),
    })
}

fn limits(set: &ValidatorSet) -> MessageLimits {
    Config::new(CHAIN, set.clone(), Hash([0; 32])).limits
}

fn consensus(payload: Vec<u8>) -> Inbound {
    Inbound::Message {
        from: stele_types::Address([1; 20]),
        channel: Channel::Consensus,
        payload,
        charge: InboundCharge::none(),
    }
}

struct Harness {
    counters: Arc<PrecheckCounters>,
    verified: Arc<VerifiedSignatures>,
    to_pipeline: mpsc::Sender<Inbound>,
    from_pipeline: mpsc::Receiver<Inbound>,
}

fn start(set: &ValidatorSet, progress: Progress) -> Harness {
    let counters = Arc::new(PrecheckCounters::default());
    let verified = Arc::new(VerifiedSignatures::default());
    let check = Precheck::new(
        CHAIN,
        fixed_epoch(set.clone()),
        limits(set),
        HORIZON,
        Arc::default(),
        counters.clone(),
    );
    let (to_pipeline, rx) = mpsc::channel(1024);
    let (tx, from_pipeline) = mpsc::channel(1024);
    tokio::spawn(run(check, verified.clone(), move || progress, rx, tx));
    Harness {
        counters,
        verified,
        to_pipeline,
        from_pipeline,
    }
}

async fn delivered(h: &mut Harness, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..n {
        match tokio::time::timeout(Duration::from_secs(10), h.from_pipeline.recv()).await {
            Ok(Some(Inbound::Message { payload, .. })) => out.push(payload),
            other => panic!("expected a message, got {other:?}"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_far_ahead_are_dropped_without_a_signature_check() {
    let keys = keys();
    let set = set(&keys);
    let progress = Progress {
        view: 3,
        stable: 8,
        committed: 10,
    };
    let mut h = start(&set, progress);
    // The replica buffers views 3..=11 and sequences 9..=40; the
    // pre-check drops only beyond twice that (views past 19, sequences
    // past 72).
    let near = signed(&keys, &set, 1, prepare(19, 72));
    for p in [
        signed(&keys, &set, 1, prepare(20, 11)),
        signed(&keys, &set, 2, commit(3, 73)),
        near.clone(),
    ] {
        h.to_pipeline.send(consensus(p)).await.unwrap();
    }
    assert_eq!(delivered(&mut h, 1).await, vec![near]);
    assert_eq!(h.counters.dropped(PrecheckDrop::Ahead), 2);
    assert_eq!(h.counters.verified(), 1);
}

/// A message of another epoch is dropped before its signature is checked
/// (ADR 0010), even one validly signed for that epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_another_epoch_are_dropped_without_a_signature_check() {
    let keys = keys();
    let set = set(&keys);
    let progress = Progress {
        view: 0,
        stable: 0,
        committed: 0,
    };
    let mut h = start(&set, progress);
    let message = prepare(0, 1);
    let key = &keys[1];
    let index = u32::try_from(set.index_of(&key.address()).unwrap()).unwrap();
    let next_epoch = SignedMessage {
        epoch: 1,
        signature: key.sign_digest(&message.digest(CHAIN, 1)),
        signer: index,
        message,
    }
    .to_bytes();
    let current = signed(&keys, &set, 1, prepare(0, 2));
    for p in [next_epoch, current.clone()] {
        h.to_pipeline.send(consensus(p)).await.unwrap();
    }
    // The driver hears that a peer is an epoch ahead (no change is decided
    // here), then gets the message of its own epoch.
    match tokio::time::timeout(Duration::from_secs(10), h.from_pipeline.recv()).await {
        Ok(Some(Inbound::EpochAhead { epoch: 1, .. })) => {}
        other => panic!("expected the epoch report, got {other:?}"),
    }
    assert_eq!(delivered(&mut h, 1).await, vec![current]);
    assert_eq!(h.counters.dropped(PrecheckDrop::WrongEpoch), 1);
    assert_eq!(h.counters.verified(), 1);
}

#[test]
fn a_peer_may_cost_its_budget_of_signature_checks_and_no_more() {
    let keys = keys();
    let p = PeerBudgets::default();
    let (a, b) = (keys[0].address(), keys[1].address());
    let t = Instant::now();
    let burst = VERIFY_PER_PEER_BURST as usize;
    assert!(p.spend(a, burst, t));
    assert!(!p.spend(a, 1, t), "the burst is spent");
    assert!(p.spend(b, 100, t), "another peer has its own budget");
    // A second refills the per-second rate, and no more is taken.
    let later = t + Duration::from_secs(1);
    assert!(!p.spend(a, VERIFY_PER_PEER_PER_S as usize + 1, later));
    assert!(p.spend(a, VERIFY_PER_PEER_PER_S as usize, later));
    assert!(!p.spend(a, 1, later));
}

#[test]
fn an_offence_puts_the_peer_in_debt_for_seconds_and_repeats_keep_it_there() {
    let keys = keys();
    let p = PeerBudgets::default();
    let (a, b) = (keys[0].address(), keys[1].address());
    let t = Instant::now();
    p.offence(a, t);
    assert!(!p.spend(a, 1, t), "an offence takes the whole burst");
    assert!(p.spend(b, 1, t), "only the offender pays");
    let secs = |s: f64| t + Duration::from_secs_f64(s);
    assert!(!p.spend(a, 1, secs(3.9)));
    assert!(p.spend(a, 1, secs(4.1)), "one offence costs about 4 s");
    // Offences pile up to ~16 s of debt, no more.
    for _ in 0..10 {
        p.offence(a, secs(5.0));
    }
    assert!(!p.spend(a, 1, secs(20.9)));
    assert!(p.spend(a, 1, secs(21.1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_stale_and_forged_messages_never_reach_the_driver() {
    let keys = keys();
    let set = set(&keys);
    let progress = Progress {
        view: 3,
        stable: 8,
        committed: 10,
    };
    let mut h = start(&set, progress);
    let good = signed(&keys, &set, 1, prepare(3, 11));
    let mut forged = signed(&keys, &set, 2, prepare(3, 12));
    // Flip a bit of the signature's r.
    let at = forged.len() - 60;
    forged[at] ^= 1;
    let inputs = vec![
        good.clone(),
        good.clone(),                           // duplicate
        signed(&keys, &set, 0, prepare(2, 11)), // left view
        signed(&keys, &set, 0, commit(3, 10)),  // committed height
        signed(&keys, &set, 2, prepare(3, 8)),  // low watermark
        forged,                                 // bad signature
        vec![0xff; 7],                          // malformed
        signed(&keys, &set, 3, commit(3, 11)),  // good
    ];
    for p in inputs {
        h.to_pipeline.send(consensus(p)).await.unwrap();
    }
    let got = delivered(&mut h, 2).await;
    assert_eq!(got, vec![good, signed(&keys, &set, 3, commit(3, 11))]);
    let c = &h.counters;
    assert_eq!(c.dropped(PrecheckDrop::Duplicate), 1);
    assert_eq!(c.dropped(PrecheckDrop::Stale), 3);
    assert_eq!(c.dropped(PrecheckDrop::BadSignature), 1);
    assert_eq!(c.dropped(PrecheckDrop::Malformed), 1);
    // Only the two good and the forged one were checked at all.
    assert_eq!(c.verified(), 2);
    assert!(h.from_pipeline.try_recv().is_err());

    // A VIEW-CHANGE to a view below ours reaches the replica (which
    // answers it with its NEW-VIEW) but its certificates, which the
    // replica never opens, are not checked.
    let old = signed(
        &keys,
        &set,
        1,
        Message::ViewChange(view_change(&keys, &set, &[0, 1, 2])),
    );
    h.to_pipeline.send(consensus(old.clone())).await.unwrap();
    assert_eq!(delivered(&mut h, 1).await, vec![old]);
    assert_eq!(h.counters.verified(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_signatures_does_not_hold_up_honest_messages_or_reorder_them() {
    let keys = keys();
    let set = set(&keys);
    let mut h = start(
        &set,
        Progress {
            view: 0,
            stable: 0,
            committed: 0,
        },
    );
    let honest: Vec<Vec<u8>> = (1..=20)
        .map(|seq| signed(&keys, &set, 0, prepare(0, seq)))
        .collect();
    for (i, good) in honest.iter().enumerate() {
        for j in 0..30u64 {
            // Distinct bytes, so each forgery costs a check (and
            // inside the horizon, so none is dropped unchecked).
            let n = i as u64 * 30 + j;
            let mut forged = signed(&keys, &set, 1, prepare(n / 64, 1 + n % 64));
            let at = forged.len() - 60;
            forged[at] ^= 1;
            h.to_pipeline.send(consensus(forged)).await.unwrap();
        }
        h.to_pipeline.send(consensus(good.clone())).await.unwrap();
    }
    assert_eq!(delivered(&mut h, honest.len()).await, honest);
    assert_eq!(h.counters.dropped(PrecheckDrop::BadSignature), 600);
    // The replica's verifier answers from the record for the good ones.
    let verifier = PrecheckedVerifier::new(h.verified.clone());
    let m = SignedMessage::decode(&honest[0], &limits(&set)).unwrap();
    let key = set.get(m.signer as usize).unwrap().public_key;
    let digest = m.message.digest(CHAIN, 0);
    assert!(h.verified.contains(&entry(&key, &digest, &m.signature)));
    assert!(verifier.verify(&key, &digest, &m.signature));
    // A signature not recorded is checked for real.
    let other = keccak256(b"another digest");
    assert!(!verifier.verify(&key, &other, &m.signature));
}

/// A VIEW-CHANGE to view 1 by `signer`, with the stable checkpoint at
/// `seq` 0 and one prepared certificate for block 1 signed by `voters`.
fn view_change(keys: &[SecretKey], set: &ValidatorSet, voters: &[usize]) -> ViewChange {
    let mut cert = PreparedCertificate {
        view: 0,
        seq: 1,
        block_hash: keccak256(b"block 1"),
        parent: Hash([0; 32]),
        payload: vec![1, 2, 3],
        votes: Vec::new(),
    };
    let digest = cert.prepare().digest(CHAIN, 0);
    let mut votes: Vec<Vote> = voters
        .iter()
        .map(|v| Vote {
            signer: u32::try_from(set.index_of(&keys[*v].address()).unwrap()).unwrap(),
            signature: keys[*v].sign_digest(&digest),
        })
        .collect();
    votes.sort_by_key(|v| v.signer);
    cert.votes = votes;
    ViewChange {
        new_view: 1,
        checkpoint: CheckpointProof {
            seq: 0,
            block_hash: Hash([0; 32]),
            votes: Vec::new(),
        },
        prepared: vec![cert],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_inside_certificates_are_checked_before_the_driver_and_bad_ones_left_to_the_replica()
{
    let keys = keys();
    let set = set(&keys);
    let mut h = start(
        &set,
        Progress {
            view: 0,
            stable: 0,
            committed: 0,
        },
    );
    let vc = view_change(&keys, &set, &[0, 1, 2]);
    let good = signed(&keys, &set, 3, Message::ViewChange(vc.clone()));
    // The same certificate with one vote forged.
    let mut forged_vc = view_change(&keys, &set, &[0, 1, 2]);
    forged_vc.new_view = 2;
    forged_vc.prepared[0].votes[1].signature.0[5] ^= 1;
    let forged = signed(&keys, &set, 3, Message::ViewChange(forged_vc.clone()));
    // One after the other: checked in parallel, the second could reach
    // its votes before the first's are recorded.
    h.to_pipeline.send(consensus(good.clone())).await.unwrap();
    assert_eq!(delivered(&mut h, 1).await, vec![good]);
    h.to_pipeline.send(consensus(forged.clone())).await.unwrap();
    // Both reach the driver: whether a certificate holds is the
    // replica's call.
    assert_eq!(delivered(&mut h, 1).await, vec![forged]);
    // The outer signature and the three votes of the first; the second
    // message's outer signature; its two good votes were recorded
    // already, its forged one is not recorded.
    assert_eq!(h.counters.verified(), 4 + 1);
    let verifier = PrecheckedVerifier::new(h.verified.clone());
    let digest = vc.prepared[0].prepare().digest(CHAIN, 0);
    for v in &vc.prepared[0].votes {
        let key = set.get(v.signer as usize).unwrap().public_key;
        assert!(h.verified.contains(&entry(&key, &digest, &v.signature)));
    }
    let bad = &forged_vc.prepared[0].votes[1];
    let key = set.get(bad.signer as usize).unwrap().public_key;
    assert!(!h.verified.contains(&entry(&key, &digest, &bad.signature)));
    assert!(!verifier.verify(&key, &digest, &bad.signature));

    // A NEW-VIEW carrying the VIEW-CHANGE: its signature and votes are
    // all recorded already, so only the NEW-VIEW's own is checked.
    let vc_signed = SignedMessage::decode(
        &signed(&keys, &set, 3, Message::ViewChange(vc)),
        &limits(&set),
    )
    .unwrap();
    let nv = Message::NewView(NewView {
        view: 1,
        view_changes: vec![vc_signed],
        pre_prepares: Vec::new(),
    });
    let primary = (0..4)
        .find(|i| set.index_of(&keys[*i].address()) == Some(1))
        .unwrap();
    let nv = signed(&keys, &set, primary, nv);
    h.to_pipeline.send(consensus(nv.clone())).await.unwrap();
    assert_eq!(delivered(&mut h, 1).await, vec![nv]);
    assert_eq!(h.counters.verified(), 5 + 1);
}

#[test]
fn seen_digests_expire_and_stay_bounded() {
    let t0 = Instant::now();
    let mut seen = Seen::new(t0);
    let d = keccak256(b"m");
    assert!(seen.insert(d, t0));
    assert!(!seen.insert(d, t0 + Duration::from_secs(1)));
    assert!(!seen.insert(d, t0 + SEEN_GENERATION_SPAN));
    assert!(seen.insert(d, t0 + 3 * SEEN_GENERATION_SPAN));
    for i in 0..3 * SEEN_PER_GENERATION_MAX as u64 {
        seen.insert(keccak256(&i.to_le_bytes()), t0);
    }
    assert!(seen.current.len() + seen.previous.len() <= 2 * SEEN_PER_GENERATION_MAX);
}

#[test]
fn the_record_of_verified_signatures_is_bounded() {
    let v = VerifiedSignatures::default();
    for i in 0..(VERIFIED_MAX as u64 + 10) {
        v.insert(keccak256(&i.to_le_bytes()));
    }
    assert_eq!(v.lock().set.len(), VERIFIED_MAX);
    assert!(!v.contains(&keccak256(&0u64.to_le_bytes())));
    assert!(v.contains(&keccak256(&(VERIFIED_MAX as u64).to_le_bytes())));
}

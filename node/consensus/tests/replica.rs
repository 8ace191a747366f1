//! Focused tests of one replica's behaviour and of the message codec.

mod sim;

use stele_consensus::{
    Action, Commit, Input, Message, MessageLimits, Prepare, Record, Replica, SignedMessage,
};
use stele_types::codec::Encode;
use stele_types::{DecodeError, Hash, keccak256};

use sim::world::{Byzantine, Faults, World, sim_config, validator_keys};

fn block(seq: u64) -> (Hash, Vec<u8>) {
    let payload = format!("block {seq}").into_bytes();
    (keccak256(&payload), payload)
}

/// Drives a single-validator replica through `blocks` proposals, returning
/// its log and every action.
fn run_single(blocks: u64) -> (Replica, Vec<Record>, Vec<Action>) {
    let (keys, set) = validator_keys(1);
    let mut r = Replica::with_k256(sim_config(set), keys[0].clone()).expect("valid config");
    let mut all = r.handle(Input::Start);
    let mut records = Vec::new();
    for _ in 0..blocks {
        let Some((view, seq)) = all.iter().rev().find_map(|a| match a {
            Action::RequestProposal { view, seq, .. } => Some((*view, *seq)),
            _ => None,
        }) else {
            break;
        };
        let (block_hash, payload) = block(seq);
        let out = r.handle(Input::ProposalReady {
            view,
            seq,
            block_hash,
            payload,
        });
        all.extend(out);
    }
    for a in &all {
        if let Action::Persist(rec) = a {
            records.push(rec.clone());
        }
    }
    (r, records, all)
}

#[test]
fn single_validator_commits_alone_with_a_valid_certificate() {
    let (r, _, actions) = run_single(6);
    let (_, set) = validator_keys(1);
    let commits: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Commit {
                seq, certificate, ..
            } => Some((*seq, certificate.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        commits.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    for (_, cert) in &commits {
        cert.verify(7, &set).expect("certificate verifies");
    }
    assert_eq!(r.committed_seq(), 6);
    assert_eq!(r.stable_seq(), 4, "checkpoint every 4 blocks became stable");
}

#[test]
fn every_broadcast_is_preceded_by_persisting_it() {
    let (_, _, actions) = run_single(5);
    let mut persisted = Vec::new();
    for a in &actions {
        match a {
            Action::Persist(Record::Signed(m)) => persisted.push(m.to_bytes()),
            Action::Broadcast(b) => assert!(persisted.contains(b), "broadcast before persist"),
            _ => {}
        }
    }
}

/// A fresh single-validator replica restarted on `records` with block 5
/// committed.
fn restart_single(records: Vec<Record>, unsynced_lost: bool) -> (Replica, Vec<Action>) {
    let (keys, set) = validator_keys(1);
    let mut r = Replica::with_k256(sim_config(set), keys[0].clone()).expect("valid config");
    let out = r.handle(Input::Restart {
        records,
        committed: Some((5, block(5).0)),
        unsynced_lost,
    });
    (r, out)
}

#[test]
fn restart_replays_the_log_without_sending_and_resumes_at_the_next_height() {
    let (_, records, _) = run_single(5);
    let (r, out) = restart_single(records, false);
    assert!(
        out.iter()
            .all(|a| !matches!(a, Action::Broadcast(_) | Action::Send { .. })),
        "replay emitted a message: {out:?}"
    );
    assert_eq!(r.committed_seq(), 5);
    // It carries on from height 6, not from a height it already signed.
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::RequestProposal { seq: 6, .. })),
        "{out:?}"
    );
    assert_eq!(r.counters().double_sign_refused, 0);
}

#[test]
fn after_a_lossy_restart_the_replica_orders_nothing_in_its_view_until_the_next() {
    let (_, records, _) = run_single(5);
    let (mut r, out) = restart_single(records, true);
    // It may have sent a PRE-PREPARE for height 6 in view 0 that its log
    // lost: no proposal in view 0, and that is recorded first.
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::RequestProposal { .. })),
        "{out:?}"
    );
    assert!(
        matches!(out.first(), Some(Action::Persist(Record::LostView(0)))),
        "{out:?}"
    );
    // A second restart on the same host (nothing lost this time) still
    // knows, from the record, through its encoding.
    {
        let limits = sim_config(validator_keys(1).1).limits;
        let mut log = run_single(5).1;
        log.push(Record::LostView(0));
        let log: Vec<Record> = log
            .iter()
            .map(|r| Record::decode(&r.to_bytes(), &limits).expect("record decodes"))
            .collect();
        assert_eq!(log.last(), Some(&Record::LostView(0)));
        let (_, out) = restart_single(log, false);
        assert!(
            !out.iter()
                .any(|a| matches!(a, Action::RequestProposal { .. })),
            "{out:?}"
        );
    }
    let timer = out
        .iter()
        .rev()
        .find_map(|a| match a {
            Action::SetTimer { id, .. } => Some(*id),
            _ => None,
        })
        .expect("the view timer is armed");
    // The view timer moves it (alone, its own quorum) to view 1, where it
    // proposes height 6 again.
    let out = r.handle(Input::Timer(timer));
    assert_eq!(r.view(), (1, true), "{out:?}");
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::RequestProposal {
                view: 1,
                seq: 6,
                ..
            }
        )),
        "{out:?}"
    );
    // A proposal in view 0 from before the restart is refused quietly.
    let (block_hash, payload) = block(6);
    let late = r.handle(Input::ProposalReady {
        view: 0,
        seq: 6,
        block_hash,
        payload,
    });
    assert!(
        !late.iter().any(|a| matches!(a, Action::Broadcast(_))),
        "{late:?}"
    );
}

fn four_replicas() -> (Vec<stele_types::SecretKey>, Replica) {
    let (keys, set) = validator_keys(4);
    let mut r = Replica::with_k256(sim_config(set), keys[1].clone()).expect("valid config");
    let _ = r.handle(Input::Start);
    (keys, r)
}

fn signed(key: &stele_types::SecretKey, signer: u32, message: Message) -> SignedMessage {
    let digest = message.digest(7, 0);
    SignedMessage {
        epoch: 0,
        signature: key.sign_digest(&digest),
        signer,
        message,
    }
}

#[test]
fn forged_unknown_oversized_and_malformed_messages_are_dropped_and_counted() {
    let (keys, mut r) = four_replicas();
    let prepare = Message::Prepare(Prepare {
        view: 0,
        seq: 1,
        block_hash: Hash([1; 32]),
        parent: Hash::ZERO,
    });
    // Signed by validator 2 but claims to be validator 3.
    let forged = signed(&keys[2], 3, prepare.clone());
    let unknown = signed(&keys[2], 9, prepare.clone());
    let out = r.handle(Input::Message(forged.to_bytes()));
    assert!(out.is_empty());
    let _ = r.handle(Input::Message(unknown.to_bytes()));
    let _ = r.handle(Input::Message(vec![0; (1 << 20) + 1]));
    let _ = r.handle(Input::Message(vec![2, 0, 0]));
    let mut trailing = signed(&keys[2], 2, prepare).to_bytes();
    trailing.push(0);
    let _ = r.handle(Input::Message(trailing));
    let c = r.counters();
    assert_eq!(c.dropped_bad_signature, 1);
    assert_eq!(c.dropped_non_validator, 1);
    assert_eq!(c.dropped_oversized, 1);
    assert_eq!(c.dropped_malformed, 2);
}

#[test]
fn votes_that_change_nothing_are_dropped_before_their_signature_is_checked() {
    let (keys, mut r) = four_replicas();
    let commit = |seq: u64| {
        Message::Commit(Commit {
            view: 0,
            seq,
            block_hash: Hash([1; 32]),
        })
    };
    // Forged (signed by 2, claiming 3): at the committed height it is not
    // even checked; above it, it is, and fails.
    let at_tip = signed(&keys[2], 3, commit(0));
    let above = signed(&keys[2], 3, commit(1));
    assert!(r.handle(Input::Message(at_tip.to_bytes())).is_empty());
    assert!(r.handle(Input::Message(above.to_bytes())).is_empty());
    let c = r.counters();
    assert_eq!(c.unneeded_votes, 1);
    assert_eq!(c.dropped_bad_signature, 1);
}

#[test]
fn conflicting_commits_from_one_validator_are_reported_as_evidence() {
    let (keys, mut r) = four_replicas();
    let commit = |b: u8| {
        Message::Commit(Commit {
            view: 0,
            seq: 1,
            block_hash: Hash([b; 32]),
        })
    };
    let first = signed(&keys[2], 2, commit(1));
    let second = signed(&keys[2], 2, commit(2));
    assert!(r.handle(Input::Message(first.to_bytes())).is_empty());
    let out = r.handle(Input::Message(second.to_bytes()));
    let evidence: Vec<_> = out
        .iter()
        .filter_map(|a| match a {
            Action::Evidence(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].first, first);
    assert_eq!(evidence[0].second, second);
    assert_eq!(r.counters().equivocations, 1);
}

#[test]
fn stale_and_far_future_views_are_dropped() {
    let (keys, mut r) = four_replicas();
    let far = signed(
        &keys[2],
        2,
        Message::Commit(Commit {
            view: 1_000,
            seq: 1,
            block_hash: Hash([1; 32]),
        }),
    );
    let _ = r.handle(Input::Message(far.to_bytes()));
    let out_of_window = signed(
        &keys[2],
        2,
        Message::Commit(Commit {
            view: 0,
            seq: 1_000,
            block_hash: Hash([1; 32]),
        }),
    );
    let _ = r.handle(Input::Message(out_of_window.to_bytes()));
    assert_eq!(r.counters().dropped_wrong_view, 1);
    assert_eq!(r.counters().dropped_out_of_window, 1);
}

#[test]
fn messages_round_trip_and_decoding_is_bounded() {
    let (keys, _) = validator_keys(4);
    let m = signed(
        &keys[0],
        0,
        Message::PrePrepare(stele_consensus::PrePrepare {
            view: 3,
            seq: 9,
            block_hash: Hash([5; 32]),
            parent: Hash([6; 32]),
            payload: vec![7; 100],
        }),
    );
    let limits = MessageLimits {
        message_bytes_max: 1 << 20,
        payload_bytes_max: 100,
        validators_max: 4,
        window_seqs_max: 8,
    };
    let bytes = m.to_bytes();
    assert_eq!(SignedMessage::decode(&bytes, &limits), Ok(m));
    let tight = MessageLimits {
        payload_bytes_max: 99,
        ..limits.clone()
    };
    assert!(matches!(
        SignedMessage::decode(&bytes, &tight),
        Err(DecodeError::LengthOverLimit { .. })
    ));
    let small = MessageLimits {
        message_bytes_max: bytes.len() - 1,
        ..limits
    };
    assert!(matches!(
        SignedMessage::decode(&bytes, &small),
        Err(DecodeError::InputTooLong { .. })
    ));
}

#[test]
fn records_round_trip() {
    let (_, records, _) = run_single(5);
    let limits = sim_config(validator_keys(1).1).limits;
    for rec in records {
        assert_eq!(Record::decode(&rec.to_bytes(), &limits), Ok(rec));
    }
}

#[test]
fn view_change_elects_next_primary_when_primary_silent() {
    let faults = Faults {
        heal_ms: 0,
        ..Faults::default()
    };
    let mut w = World::new(1, 4, &[(0, Byzantine::Silent)], faults);
    w.run(60_000, |w| w.min_live_honest_height() >= 5)
        .expect("no invariant violation");
    assert!(w.min_live_honest_height() >= 5);
    assert_eq!(
        w.max_honest_view(),
        1,
        "one view change reaches an honest primary"
    );
}

#[test]
fn crashed_primary_is_replaced_and_rejoins_after_restart() {
    let faults = Faults {
        crashes: vec![(0, 1_000, 20_000, false)],
        heal_ms: 0,
        ..Faults::default()
    };
    let mut w = World::new(2, 4, &[], faults);
    w.run(60_000, |w| {
        w.time_ms > 20_000 && w.min_live_honest_height() >= 40
    })
    .expect("no invariant violation");
    assert!(
        w.min_live_honest_height() >= 40,
        "{}",
        w.min_live_honest_height()
    );
}

#[test]
fn compacted_log_stays_bounded_and_still_restarts() {
    let (_, _, actions) = run_single(60);
    let mut log: Vec<Record> = Vec::new();
    let mut peak = 0;
    for a in &actions {
        match a {
            Action::Persist(r) => log.push(r.clone()),
            Action::CompactLog { stable_seq, view } => {
                log.retain(|r| !r.obsolete(*stable_seq, *view));
            }
            _ => {}
        }
        peak = peak.max(log.len());
    }
    // Window of 8 and a checkpoint every 4: a few records per height in it.
    assert!(peak < 50, "log grew to {peak} records");
    let (keys, set) = validator_keys(1);
    let mut r = Replica::with_k256(sim_config(set), keys[0].clone()).expect("valid config");
    let (h60, _) = block(60);
    let out = r.handle(Input::Restart {
        records: log,
        committed: Some((60, h60)),
        unsynced_lost: false,
    });
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::RequestProposal { seq: 61, .. })),
        "{out:?}"
    );
    assert_eq!(r.stable_seq(), 60);
}

/// §4.4: O takes, per height, the prepared certificate of the highest view,
/// and stops where the chain breaks.
#[test]
fn new_view_reproposes_the_highest_view_certificate_and_stops_at_a_broken_chain() {
    use stele_consensus::{CheckpointProof, PreparedCertificate, ViewChange, Vote};
    let (keys, set) = validator_keys(4);
    let cfg = sim_config(set);
    let genesis = cfg.base_hash;
    let mut r = Replica::with_k256(cfg, keys[2].clone()).expect("valid config");
    let _ = r.handle(Input::Start);
    let cert = |view: u64, seq: u64, b: u8, parent: Hash| {
        let block_hash = Hash([b; 32]);
        let p = Prepare {
            view,
            seq,
            block_hash,
            parent,
        };
        let votes = [0u32, 1, 3]
            .iter()
            .map(|i| Vote {
                signer: *i,
                signature: keys[*i as usize].sign_digest(&p.digest(7, 0)),
            })
            .collect();
        PreparedCertificate {
            view,
            seq,
            block_hash,
            parent,
            payload: vec![b],
            votes,
        }
    };
    let a = cert(0, 1, 0xaa, genesis);
    let b = cert(1, 1, 0xbb, genesis);
    let on_a = cert(0, 2, 0xcc, Hash([0xaa; 32]));
    let vc = |signer: u32, prepared: Vec<PreparedCertificate>| {
        signed(
            &keys[signer as usize],
            signer,
            Message::ViewChange(ViewChange {
                new_view: 2,
                checkpoint: CheckpointProof {
                    seq: 0,
                    block_hash: genesis,
                    votes: Vec::new(),
                },
                prepared,
            }),
        )
    };
    let mut out = Vec::new();
    out.extend(r.handle(Input::Message(
        vc(0, vec![a.clone(), on_a.clone()]).to_bytes(),
    )));
    out.extend(r.handle(Input::Message(vc(1, vec![b]).to_bytes())));
    out.extend(r.handle(Input::Message(vc(3, vec![a, on_a]).to_bytes())));
    let limits = sim_config(validator_keys(4).1).limits;
    let new_view = out
        .iter()
        .find_map(|act| match act {
            Action::Broadcast(bytes) => match SignedMessage::decode(bytes, &limits) {
                Ok(SignedMessage {
                    message: Message::NewView(nv),
                    ..
                }) => Some(nv),
                _ => None,
            },
            _ => None,
        })
        .expect("the primary of view 2 sends NEW-VIEW");
    assert_eq!(new_view.view, 2);
    let o: Vec<_> = new_view
        .pre_prepares
        .iter()
        .map(|e| (e.seq, e.block_hash))
        .collect();
    assert_eq!(o, vec![(1, Hash([0xbb; 32]))]);
    assert_eq!(r.view(), (2, true));
}

fn evidence_in(out: &[Action]) -> Vec<stele_consensus::Evidence> {
    out.iter()
        .filter_map(|a| match a {
            Action::Evidence(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn view_change(new_view: u64, checkpoint_hash: Hash) -> Message {
    Message::ViewChange(stele_consensus::message::ViewChange {
        new_view,
        checkpoint: stele_consensus::message::CheckpointProof {
            seq: 0,
            block_hash: checkpoint_hash,
            votes: vec![],
        },
        prepared: vec![],
    })
}

#[test]
fn two_view_changes_for_one_view_from_one_validator_are_evidence() {
    let (keys, mut r) = four_replicas();
    let genesis = sim::world::genesis_hash();
    let first = signed(&keys[2], 2, view_change(1, genesis));
    let second = signed(&keys[2], 2, view_change(1, Hash([9; 32])));
    assert!(evidence_in(&r.handle(Input::Message(first.to_bytes()))).is_empty());
    // Resending the same VIEW-CHANGE is not evidence.
    assert!(evidence_in(&r.handle(Input::Message(first.to_bytes()))).is_empty());
    let evidence = evidence_in(&r.handle(Input::Message(second.to_bytes())));
    assert_eq!(evidence.len(), 1);
    assert_eq!((&evidence[0].first, &evidence[0].second), (&first, &second));
    assert_eq!(r.counters().equivocations, 1);
}

#[test]
fn two_new_views_for_one_view_from_its_primary_are_evidence() {
    let (keys, mut r) = four_replicas();
    let genesis = sim::world::genesis_hash();
    let vcs = |signers: &[u32]| -> Vec<SignedMessage> {
        signers
            .iter()
            .map(|&i| signed(&keys[i as usize], i, view_change(2, genesis)))
            .collect()
    };
    let new_view = |signers: &[u32]| {
        Message::NewView(stele_consensus::message::NewView {
            view: 2,
            view_changes: vcs(signers),
            pre_prepares: vec![],
        })
    };
    // The primary of view 2 is validator 2.
    let first = signed(&keys[2], 2, new_view(&[0, 2, 3]));
    let second = signed(&keys[2], 2, new_view(&[0, 1, 2, 3]));
    assert!(evidence_in(&r.handle(Input::Message(first.to_bytes()))).is_empty());
    assert!(r.counters().equivocations == 0);
    let evidence = evidence_in(&r.handle(Input::Message(second.to_bytes())));
    assert_eq!(evidence.len(), 1, "the first NEW-VIEW was installed");
    assert_eq!((&evidence[0].first, &evidence[0].second), (&first, &second));
}

#[test]
fn the_next_blocks_pre_prepare_rearms_the_view_timer_once() {
    let (keys, mut r) = four_replicas();
    let pre_prepare = |seq: u64| {
        let (block_hash, payload) = block(seq);
        let m = Message::PrePrepare(stele_consensus::PrePrepare {
            view: 0,
            seq,
            block_hash,
            parent: Hash::ZERO,
            payload,
        });
        signed(&keys[0], 0, m).to_bytes()
    };
    let rearmed = |out: &[Action]| out.iter().any(|a| matches!(a, Action::SetTimer { .. }));
    // Not the next block (1 is): no extension.
    let out = r.handle(Input::Message(pre_prepare(2)));
    assert!(!rearmed(&out), "{out:?}");
    // The next block: its commit gets a whole timeout.
    let out = r.handle(Input::Message(pre_prepare(1)));
    assert!(rearmed(&out), "{out:?}");
    // Sent again: nothing more.
    let out = r.handle(Input::Message(pre_prepare(1)));
    assert!(!rearmed(&out), "{out:?}");
    // From a replica that is not the primary: dropped, no extension.
    let (block_hash, payload) = block(1);
    let forged = signed(
        &keys[2],
        2,
        Message::PrePrepare(stele_consensus::PrePrepare {
            view: 0,
            seq: 1,
            block_hash,
            parent: Hash::ZERO,
            payload,
        }),
    );
    let out = r.handle(Input::Message(forged.to_bytes()));
    assert!(!rearmed(&out), "{out:?}");
}

/// Answers the proposal requests in `actions` and those that follow, at
/// most `max` of them, returning every action.
fn propose_all(r: &mut Replica, mut actions: Vec<Action>, max: usize) -> Vec<Action> {
    let mut all = Vec::new();
    for _ in 0..=max {
        let request = actions.iter().rev().find_map(|a| match a {
            Action::RequestProposal { view, seq, .. } => Some((*view, *seq)),
            _ => None,
        });
        all.append(&mut actions);
        let Some((view, seq)) = request else {
            return all;
        };
        let (block_hash, payload) = block(seq);
        actions = r.handle(Input::ProposalReady {
            view,
            seq,
            block_hash,
            payload,
        });
    }
    all.append(&mut actions);
    all
}

fn committed_seqs(actions: &[Action]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Commit { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

/// ADR 0010: told where its epoch ends, a replica orders nothing past it,
/// is finished once it commits it (its timer no longer fires), and the next
/// epoch's replica starts on that block with its own epoch in every
/// message and certificate.
#[test]
fn a_replica_stops_at_its_epochs_end_and_the_next_epoch_starts_on_its_last_block() {
    let (keys, set) = validator_keys(1);
    let cfg = sim_config(set.clone());
    let mut r = Replica::with_k256(cfg.clone(), keys[0].clone()).expect("valid config");
    // Block 2 decides a change, so the epoch ends at the next checkpoint,
    // 4, and nothing past it is asked for however many blocks could be.
    let start = r.handle(Input::Start);
    let mut actions = propose_all(&mut r, start, 2);
    actions.extend(r.handle(Input::EpochEnds { last_seq: 4 }));
    let actions = propose_all(&mut r, actions, 100);
    assert_eq!(committed_seqs(&actions), vec![1, 2, 3, 4]);
    assert!(r.finished());
    assert_eq!(r.last_seq(), Some(4));
    let later = r.handle(Input::EpochEnds { last_seq: 8 });
    assert!(later.is_empty(), "the end is given once");
    let timers: Vec<_> = r
        .handle(Input::Timer(stele_consensus::TimerId(u64::MAX)))
        .into_iter()
        .chain(r.handle(Input::Timer(stele_consensus::TimerId(0))))
        .collect();
    assert!(timers.is_empty(), "a finished replica changes no view");

    // Epoch 1 builds on block 4, with a new key.
    let block4 = block(4).0;
    let new_key = stele_types::SecretKey::from_bytes(&[7; 32]).expect("valid key");
    let next_set = stele_types::ValidatorSet::new(vec![stele_types::Validator {
        address: new_key.address(),
        public_key: new_key.public_key(),
        power: 1,
    }])
    .expect("one validator");
    let mut next = Replica::with_k256(cfg.for_epoch(1, next_set.clone(), 4, block4), new_key)
        .expect("valid config");
    let start = next.handle(Input::Start);
    assert!(start.iter().any(|a| matches!(
        a,
        Action::RequestProposal { seq: 5, parent, .. } if *parent == block4
    )));
    let actions = propose_all(&mut next, start, 3);
    let mut certified = 0;
    for a in &actions {
        match a {
            Action::Persist(Record::Signed(m)) => assert_eq!(m.epoch, 1),
            Action::Commit { certificate, .. } => {
                assert_eq!(certificate.epoch, 1);
                certificate
                    .verify(cfg.chain_id, &next_set)
                    .expect("the new set certifies epoch 1");
                assert!(certificate.verify(cfg.chain_id, &set).is_err());
                certified += 1;
            }
            _ => {}
        }
    }
    assert!(certified >= 1);
    // A base off a checkpoint is refused.
    let bad = cfg.for_epoch(1, next_set, 5, block4);
    assert_eq!(
        bad.validate(),
        Err(stele_consensus::ConfigError::BaseNotCheckpoint(5))
    );
}

/// An end below the committed height or off a checkpoint is ignored.
#[test]
fn a_bad_epoch_end_changes_nothing() {
    let (r0, _, _) = run_single(6);
    let committed = r0.committed_seq();
    assert!(committed >= 4);
    let mut r = r0;
    let _ = r.handle(Input::EpochEnds { last_seq: 0 });
    // Above the committed height, but not a checkpoint (K = 4).
    let _ = r.handle(Input::EpochEnds {
        last_seq: (committed / 4 + 2) * 4 + 1,
    });
    assert_eq!(r.last_seq(), None);
}

/// A message of another epoch is dropped before its signature is checked,
/// and one that claims this epoch but was signed for another fails its
/// signature: the epoch is bound by the digest, not only the header.
#[test]
fn messages_of_another_epoch_are_dropped() {
    let (keys, mut r) = four_replicas();
    let commit = Message::Commit(Commit {
        view: 0,
        seq: 1,
        block_hash: Hash([1; 32]),
    });
    let other_epoch = SignedMessage {
        epoch: 1,
        signature: keys[2].sign_digest(&commit.digest(7, 1)),
        signer: 2,
        message: commit.clone(),
    };
    let _ = r.handle(Input::Message(other_epoch.to_bytes()));
    assert_eq!(r.counters().dropped_wrong_epoch, 1);
    assert_eq!(r.counters().dropped_bad_signature, 0);
    let relabelled = SignedMessage {
        epoch: 0,
        ..other_epoch
    };
    let _ = r.handle(Input::Message(relabelled.to_bytes()));
    assert_eq!(r.counters().dropped_bad_signature, 1);
}

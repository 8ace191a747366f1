//! Properties and pinned bytes of the consensus wire format.

use proptest::prelude::*;
use stele_consensus::{
    Checkpoint, CheckpointProof, Commit, Message, MessageLimits, NewView, NewViewEntry, PrePrepare,
    Prepare, PreparedCertificate, SignedMessage, ViewChange, Vote,
};
use stele_types::codec::Encode;
use stele_types::{Hash, Signature};

fn limits() -> MessageLimits {
    MessageLimits {
        message_bytes_max: 1 << 20,
        payload_bytes_max: 256,
        validators_max: 8,
        window_seqs_max: 4,
    }
}

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn sig() -> impl Strategy<Value = Signature> {
    prop::collection::vec(any::<u8>(), 65).prop_map(|v| {
        let mut a = [0u8; 65];
        a.copy_from_slice(&v);
        Signature(a)
    })
}

fn votes() -> impl Strategy<Value = Vec<Vote>> {
    prop::collection::vec(
        (any::<u32>(), sig()).prop_map(|(signer, signature)| Vote { signer, signature }),
        0..4,
    )
}

fn cert() -> impl Strategy<Value = PreparedCertificate> {
    (
        any::<u64>(),
        any::<u64>(),
        hash(),
        hash(),
        prop::collection::vec(any::<u8>(), 0..64),
        votes(),
    )
        .prop_map(
            |(view, seq, block_hash, parent, payload, votes)| PreparedCertificate {
                view,
                seq,
                block_hash,
                parent,
                payload,
                votes,
            },
        )
}

fn view_change() -> impl Strategy<Value = ViewChange> {
    (
        any::<u64>(),
        any::<u64>(),
        hash(),
        votes(),
        prop::collection::vec(cert(), 0..3),
    )
        .prop_map(|(new_view, seq, block_hash, votes, prepared)| ViewChange {
            new_view,
            checkpoint: CheckpointProof {
                seq,
                block_hash,
                votes,
            },
            prepared,
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u64>(),
            hash(),
            hash(),
            prop::collection::vec(any::<u8>(), 0..256)
        )
            .prop_map(|(view, seq, block_hash, parent, payload)| {
                Message::PrePrepare(PrePrepare {
                    view,
                    seq,
                    block_hash,
                    parent,
                    payload,
                })
            }),
        (any::<u64>(), any::<u64>(), hash(), hash()).prop_map(|(view, seq, block_hash, parent)| {
            Message::Prepare(Prepare {
                view,
                seq,
                block_hash,
                parent,
            })
        }),
        (any::<u64>(), any::<u64>(), hash()).prop_map(|(view, seq, block_hash)| {
            Message::Commit(Commit {
                view,
                seq,
                block_hash,
            })
        }),
        (any::<u64>(), hash())
            .prop_map(|(seq, block_hash)| Message::Checkpoint(Checkpoint { seq, block_hash })),
        view_change().prop_map(Message::ViewChange),
        (
            any::<u64>(),
            prop::collection::vec((view_change(), any::<u32>(), sig()), 0..3),
            prop::collection::vec((any::<u64>(), hash(), hash()), 0..4)
        )
            .prop_map(|(view, vcs, entries)| {
                Message::NewView(NewView {
                    view,
                    view_changes: vcs
                        .into_iter()
                        .map(|(vc, signer, signature)| SignedMessage {
                            epoch: u64::from(signer % 3),
                            message: Message::ViewChange(vc),
                            signer,
                            signature,
                        })
                        .collect(),
                    pre_prepares: entries
                        .into_iter()
                        .map(|(seq, block_hash, parent)| NewViewEntry {
                            seq,
                            block_hash,
                            parent,
                        })
                        .collect(),
                })
            }),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips_canonically(m in message(), epoch in any::<u64>(), signer in any::<u32>(), signature in sig()) {
        let signed = SignedMessage { epoch, message: m, signer, signature };
        prop_assert_eq!(stele_consensus::peek_epoch(&signed.to_bytes()), Some(epoch));
        let bytes = signed.to_bytes();
        let back = SignedMessage::decode(&bytes, &limits()).unwrap();
        prop_assert_eq!(back.to_bytes(), bytes);
        prop_assert_eq!(back, signed);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = SignedMessage::decode(&bytes, &limits());
    }

    #[test]
    fn truncated_or_extended_encodings_are_rejected(m in message(), cut in any::<prop::sample::Index>()) {
        let bytes = SignedMessage { epoch: 3, message: m, signer: 0, signature: Signature([1; 65]) }.to_bytes();
        let cut = cut.index(bytes.len());
        prop_assert!(SignedMessage::decode(&bytes[..cut], &limits()).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(SignedMessage::decode(&longer, &limits()).is_err());
    }
}

/// Changing these bytes is a wire-format change: do it deliberately.
#[test]
fn commit_encoding_and_digest_are_pinned() {
    let m = Message::Commit(Commit {
        view: 2,
        seq: 5,
        block_hash: Hash([0xab; 32]),
    });
    assert_eq!(
        hex(&m.to_bytes()),
        format!(
            "03{}{}{}",
            "0200000000000000",
            "0500000000000000",
            "ab".repeat(32)
        )
    );
    // COMMIT signs exactly what a CommitCertificate verifies.
    let cert = stele_types::CommitCertificate {
        height: 5,
        epoch: 9,
        view: 2,
        block_hash: Hash([0xab; 32]),
        signatures: Vec::new(),
    };
    assert_eq!(m.digest(7, 9), cert.digest(7));
    assert_eq!(hex(&m.digest(7, 9).0), PINNED_COMMIT_DIGEST);
    // The epoch is in the digest: a vote of one epoch counts in no other.
    assert_ne!(m.digest(7, 9), m.digest(7, 10));
    // And first on the wire, where a node reads it to route the message.
    let signed = SignedMessage {
        epoch: 9,
        message: m,
        signer: 1,
        signature: Signature([1; 65]),
    };
    assert_eq!(hex(&signed.to_bytes()[..9]), "090000000000000003");
    assert_eq!(stele_consensus::peek_epoch(&signed.to_bytes()), Some(9));
    assert_eq!(stele_consensus::peek_epoch(&[9, 0, 0]), None);
}

const PINNED_COMMIT_DIGEST: &str =
    "dac271ea253596af875086872dc9baf1234e47d5312950ab9274549721752488";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

//! Conformance fixtures: the exact bytes and hashes of sample wire and storage
//! values. A failure here means the format changed; change a fixture only as a
//! deliberate, documented format change.

mod common;

use common::*;
use stele_types::*;

fn hex(bytes: &[u8]) -> String {
    stele_types::hex::encode(bytes)
}

#[test]
fn transaction_fixture() {
    let tx = sample_tx();
    assert_eq!(
        hex(&tx.to_bytes()),
        "0x1e7e0500000000000700000000000000a0860100000000000200000000000000021111111111111111111111111111111111111111080000007472616e736665720400000001020304e80300000000000000000000000000008db27b1a06de6c5c7ac5112d7e420be12c9f1725a1acb4e6e1f29a09ae444cf502549241aa229a553c211501297faf838751311007003c642f9c06132fbd6bf801"
    );
    assert_eq!(
        tx.hash().to_string(),
        "0x6ef107a6994abe3c666e81e1e3a3aa0a2a0a1d0d211fc8605a212f5903bc9b5f"
    );
    assert_eq!(tx.verify(CHAIN_ID), Ok(key(1).address()));
}

#[test]
fn block_header_fixture() {
    let header = sample_header();
    assert_eq!(
        hex(&header.to_bytes()),
        "0x1e7e0500000000002a0000000000000002000000000000000300000000000000ff483e972a04a9a62bb4b7d04ae403c615604e4090521ecc5bb7af67f71be09ce18dc0f391aaaa43d8da2b7a90e1d63121f5de741c6c64dd2c891d7a26f1de2869e39af32bd0cc2d5f8ad822a3afcd7fe8d7211e4ca7c42654cdbda7a9b745161636cb372e15f86c23b8ff4f98c544b783b0bb7dca6973984aec578d82734f1800a8da769b0100002b5ad5c4795c026514f8317c7a215e218dccd6cf58b3be46c6593035a2252d221d1478e19da3daf8a1a96d8c84ed4089f94ccff1"
    );
    assert_eq!(
        header.hash().to_string(),
        "0xcb6c066df3b31c750e1dac471676673ca44e95039778b31fa6f69441ca50929e"
    );
}

#[test]
fn receipt_fixture() {
    let receipt = sample_receipt();
    assert_eq!(
        hex(&receipt.to_bytes()),
        "0x6ef107a6994abe3c666e81e1e3a3aa0a2a0a1d0d211fc8605a212f5903bc9b5f00595300000000000001000000111111111111111111111111111111111111111101000000f099cd8bde557814842a3121e8ddfd433a539b8c9f14bf31ebf108d12e6196e9020000000909010000000100"
    );
    assert_eq!(
        receipt.hash().to_string(),
        "0xf75498e2df08baea33b4cbc95bb7016eaab7b701b60105e2fc7f5135049f9bd3"
    );
}

#[test]
fn commit_certificate_fixture() {
    let (keys, set) = validator_set(4);
    let header = sample_header();
    let cert = certificate(&header, &keys, &[0, 1, 3]);
    assert_eq!(
        hex(&cert.to_bytes()),
        "0x2a0000000000000002000000000000000300000000000000cb6c066df3b31c750e1dac471676673ca44e95039778b31fa6f69441ca50929e0300000000000000c9363437d1fd977b14736caa99aef2eff001147e31948de20b8f9fc425602ddf475681ba2c043e2edceb8e55e461cfe0bf93c87c0bdb83260be7c7fba2379b6d010100000052059334a514538d83894479cebefaa80a81efe43ee2f4f93c5724c2e6bd1dfa67a1ae908a08c38b6ecbd7ea58cdc1e21ed052bad32bc5df210343a68a76600500030000005a44f8ffd77120dc34549c4e685a843d03e0ab26bee93ddd48d844d81fef3ecf2400d24031935d995d3c5c00a4ba8f6b6a54063dab9c0b2eb22c46c43c76f3a300"
    );
    assert_eq!(
        keccak256(&cert.to_bytes()).to_string(),
        "0x9cf3907e5c17eb193c226301bb3834f3acc1a44ee322e09e3cbb64ebb8674366"
    );
    assert_eq!(cert.verify_header(&header, &set), Ok(()));
    // A certificate of another epoch does not certify the header.
    let other_epoch = CommitCertificate {
        epoch: header.epoch + 1,
        ..cert.clone()
    };
    assert_eq!(
        other_epoch.verify_header(&header, &set),
        Err(CertificateError::WrongEpoch {
            expected: header.epoch,
            got: header.epoch + 1
        })
    );
    assert_eq!(
        set.hash().to_string(),
        "0xba321c005a9874a802216bab0e89ab0d5f710f82f4605b62da44f7d400306128"
    );
}

#[test]
fn address_of_private_key_one() {
    assert_eq!(
        key(1).address().to_string(),
        "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    );
}

#[test]
fn json_form_uses_hex_and_decimal_strings() {
    let json = serde_json::to_value(sample_tx()).unwrap();
    assert_eq!(json["tx"]["payload"]["kind"], "call");
    assert_eq!(json["tx"]["payload"]["args"], "0x01020304");
    assert_eq!(json["tx"]["payload"]["value"], "1000");
    assert_eq!(
        json["tx"]["payload"]["contract"],
        "0x1111111111111111111111111111111111111111"
    );
    let back: SignedTransaction = serde_json::from_value(json).unwrap();
    assert_eq!(back, sample_tx());
}

#[test]
fn certificate_without_quorum_or_with_a_bad_signature_is_rejected() {
    let (keys, set) = validator_set(4);
    let header = sample_header();
    let two = certificate(&header, &keys, &[0, 1]);
    assert_eq!(
        two.verify_header(&header, &set),
        Err(CertificateError::NoQuorum { got: 2, needed: 3 })
    );
    let dup = certificate(&header, &keys, &[0, 1, 1]);
    assert_eq!(
        dup.verify_header(&header, &set),
        Err(CertificateError::NotSorted(2))
    );
    let unknown = certificate(&header, &keys, &[0, 1, 2]);
    let mut unknown = unknown;
    unknown.signatures[2].validator = 9;
    assert_eq!(
        unknown.verify_header(&header, &set),
        Err(CertificateError::UnknownValidator(9))
    );
    let mut forged = certificate(&header, &keys, &[0, 1, 2]);
    forged.signatures[1].signature = forged.signatures[0].signature;
    assert!(matches!(
        forged.verify_header(&header, &set),
        Err(CertificateError::BadSignature { index: 1, .. })
    ));
    let mut other = sample_header();
    other.height += 1;
    let cert = certificate(&header, &keys, &[0, 1, 2]);
    assert!(matches!(
        cert.verify_header(&other, &set),
        Err(CertificateError::WrongBlock { .. })
    ));
}

#[test]
fn quorums_follow_n_equals_3f_plus_1() {
    for (n, quorum, weak) in [(1u8, 1u64, 1u64), (4, 3, 2), (7, 5, 3), (10, 7, 4)] {
        let (_, set) = validator_set(n);
        assert_eq!(set.quorum_power(), quorum, "n = {n}");
        assert_eq!(set.weak_quorum_power(), weak, "n = {n}");
    }
}

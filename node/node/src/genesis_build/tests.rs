use super::*;
use stele_types::SecretKey;

use crate::host::HostPort;

const CHAIN: u64 = 9;

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).unwrap()
}

fn host(i: u8) -> HostPort {
    format!("10.9.0.{i}:26656").parse().unwrap()
}

fn record(byte: u8) -> ValidatorRecord {
    ValidatorRecord::sign(&key(byte), CHAIN, 1, host(byte)).unwrap()
}

/// Writes `records` into `dir` as `<name>.json` files.
fn write_records(dir: &Path, records: &[(&str, ValidatorRecord)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, r) in records {
        let text = serde_json::to_string_pretty(r).unwrap();
        std::fs::write(dir.join(format!("{name}.json")), text).unwrap();
    }
}

#[test]
fn a_tampered_record_is_refused_and_leaves_the_draft_as_it_was() {
    let mut draft = GenesisDraft::new(CHAIN, 0);
    let mut r = record(1);
    r.power = 100;
    let err = draft.add_validator(r).unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::Invalid {
                source: RecordError::BadSignature(_),
                ..
            }
        ),
        "{err}"
    );
    // A record of another chain.
    let other = ValidatorRecord::sign(&key(1), CHAIN + 1, 1, host(1)).unwrap();
    let err = draft.add_validator(other).unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::Invalid {
                source: RecordError::WrongChain { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(draft.validators.is_empty());
}

#[test]
fn a_second_record_of_a_validator_key_or_address_is_refused() {
    let mut draft = GenesisDraft::new(CHAIN, 0);
    draft.add_validator(record(1)).unwrap();
    // The same key, advertising elsewhere.
    let again = ValidatorRecord::sign(&key(1), CHAIN, 1, host(99)).unwrap();
    let err = draft.add_validator(again).unwrap_err();
    assert!(matches!(err, BuildError::DuplicateValidator(_)), "{err}");
    // Another key on the same address and port.
    let same_place = ValidatorRecord::sign(&key(2), CHAIN, 1, host(1)).unwrap();
    let err = draft.add_validator(same_place).unwrap_err();
    assert!(
        matches!(err, BuildError::DuplicateAdvertise { .. }),
        "{err}"
    );
    assert_eq!(draft.validators.len(), 1);
    draft.add_account(key(5).address(), 10).unwrap();
    let err = draft.add_account(key(5).address(), 20).unwrap_err();
    assert!(matches!(err, BuildError::DuplicateAccount(_)), "{err}");
    let err = draft.add_account(key(6).address(), u128::MAX).unwrap_err();
    assert!(matches!(err, BuildError::SupplyOverflow), "{err}");
}

#[test]
fn collecting_the_same_records_in_any_order_builds_the_same_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<ValidatorRecord> = (1..=4).map(record).collect();
    // The same records under names that sort in opposite orders.
    write_records(
        &dir.path().join("a"),
        &[
            ("a", records[0].clone()),
            ("b", records[1].clone()),
            ("c", records[2].clone()),
            ("d", records[3].clone()),
        ],
    );
    write_records(
        &dir.path().join("b"),
        &[
            ("a", records[3].clone()),
            ("b", records[2].clone()),
            ("c", records[1].clone()),
            ("d", records[0].clone()),
        ],
    );
    let mut first = GenesisDraft::new(CHAIN, 5);
    assert_eq!(first.collect(&dir.path().join("a")).unwrap(), 4);
    first.add_account(key(20).address(), 7).unwrap();
    first.add_account(key(21).address(), 8).unwrap();
    let mut second = GenesisDraft::new(CHAIN, 5);
    second.add_account(key(21).address(), 8).unwrap();
    second.collect(&dir.path().join("b")).unwrap();
    second.add_account(key(20).address(), 7).unwrap();
    let mut third = GenesisDraft::new(CHAIN, 5);
    for r in records.iter().rev() {
        third.add_validator(r.clone()).unwrap();
    }
    third.add_account(key(20).address(), 7).unwrap();
    third.add_account(key(21).address(), 8).unwrap();
    let hash = first.build().unwrap().hash();
    assert_eq!(second.build().unwrap().hash(), hash);
    assert_eq!(third.build().unwrap().hash(), hash);
    assert_eq!(first, second);
    let genesis = first.build().unwrap();
    assert_eq!(genesis.validators.len(), 4);
    assert_eq!(genesis.total_supply(), 15);
    // Another genesis time is another chain.
    let mut later = first.clone();
    later.genesis_time_ms += 1;
    assert_ne!(later.build().unwrap().hash(), hash);
}

#[test]
fn collect_adds_all_records_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = record(3);
    bad.advertise = host(33);
    write_records(
        dir.path(),
        &[("one", record(1)), ("two", record(2)), ("three", bad)],
    );
    std::fs::write(dir.path().join("notes.txt"), "not a record").unwrap();
    let mut draft = GenesisDraft::new(CHAIN, 0);
    let err = draft.collect(dir.path()).unwrap_err();
    match &err {
        BuildError::Record { path, source } => {
            assert!(path.ends_with("three.json"), "{err}");
            assert!(matches!(source, RecordError::BadSignature(_)), "{err}");
        }
        _ => panic!("{err}"),
    }
    assert_eq!(draft, GenesisDraft::new(CHAIN, 0));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        draft.collect(empty.path()),
        Err(BuildError::NoRecords(_))
    ));
    assert!(matches!(draft.build(), Err(BuildError::NoValidators)));
}

#[test]
fn a_saved_draft_loads_back_and_a_hand_edited_one_is_checked_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DRAFT_FILE);
    let mut draft = GenesisDraft::new(CHAIN, 3);
    draft.add_validator(record(2)).unwrap();
    draft.add_validator(record(1)).unwrap();
    draft.add_account(key(9).address(), 1_000).unwrap();
    draft.save(&path).unwrap();
    assert_eq!(GenesisDraft::load(&path).unwrap(), draft);
    // Saving again replaces the file.
    draft.add_account(key(10).address(), 1).unwrap();
    draft.save(&path).unwrap();
    assert_eq!(GenesisDraft::load(&path).unwrap(), draft);

    let text = std::fs::read_to_string(&path).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["validators"][0]["power"] = 50.into();
    std::fs::write(&path, json.to_string()).unwrap();
    let err = GenesisDraft::load(&path).unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");

    json["validators"][0]["power"] = 1.into();
    json["draft_version"] = 2.into();
    std::fs::write(&path, json.to_string()).unwrap();
    let err = GenesisDraft::load(&path).unwrap_err();
    assert!(
        matches!(err, BuildError::DraftVersion { got: 2, .. }),
        "{err}"
    );

    let genesis_path = dir.path().join("genesis.json");
    let genesis = draft.build().unwrap();
    std::fs::write(&genesis_path, serde_json::to_string(&genesis).unwrap()).unwrap();
    let err = GenesisDraft::load(&genesis_path).unwrap_err();
    assert!(matches!(err, BuildError::NotADraft { .. }), "{err}");
}

#[test]
fn peers_are_every_other_validator_at_its_advertised_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut draft = GenesisDraft::new(CHAIN, 0);
    for b in 1..=4 {
        draft.add_validator(record(b)).unwrap();
    }
    let genesis = draft.build().unwrap();
    let peers_path = dir.path().join(PEERS_FILE);
    write_peers_file(&peers_path, &draft.validators).unwrap();
    assert!(
        write_peers_file(&peers_path, &draft.validators).is_err(),
        "never overwrites"
    );
    let me = key(2).address();
    let peers = peers_from_records(&genesis, read_records(&peers_path).unwrap(), &me).unwrap();
    assert_eq!(peers.len(), 3);
    assert!(peers.iter().all(|p| p.address != me));
    assert!(peers.windows(2).all(|w| w[0].address < w[1].address));
    for p in &peers {
        let r = draft
            .validators
            .iter()
            .find(|r| r.address == p.address)
            .unwrap();
        assert_eq!(p.endpoint, r.advertise);
    }
    // A directory of record files gives the same peers.
    write_records(
        &dir.path().join("records"),
        &[("x", record(4)), ("y", record(1)), ("z", record(3))],
    );
    let from_dir = peers_from_records(
        &genesis,
        read_records(&dir.path().join("records")).unwrap(),
        &me,
    )
    .unwrap();
    assert_eq!(from_dir, peers);

    // A stranger's record, a record that does not match the genesis, and
    // a validator listed twice are refused.
    let stranger = vec![(peers_path.clone(), record(7))];
    let err = peers_from_records(&genesis, stranger, &me).unwrap_err();
    assert!(matches!(err, BuildError::NotInGenesis(_)), "{err}");
    let heavier = ValidatorRecord::sign(&key(1), CHAIN, 5, host(1)).unwrap();
    let err = peers_from_records(&genesis, vec![(peers_path.clone(), heavier)], &me).unwrap_err();
    assert!(
        matches!(err, BuildError::RecordMismatch { field: "power", .. }),
        "{err}"
    );
    let twice = vec![
        (peers_path.clone(), record(1)),
        (peers_path.clone(), record(1)),
    ];
    let err = peers_from_records(&genesis, twice, &me).unwrap_err();
    assert!(matches!(err, BuildError::DuplicateRecord(_)), "{err}");
    let mut tampered = record(1);
    tampered.advertise = host(50);
    let err = peers_from_records(&genesis, vec![(peers_path, tampered)], &me).unwrap_err();
    assert!(matches!(err, BuildError::Record { .. }), "{err}");
}

//! Deterministic simulation of PBFT clusters of 1, 4 and 7 validators under
//! network faults, partitions, crashes and Byzantine replicas.
//!
//! Quick mode (CI): 500 seeds split over four tests. Long mode:
//! `STELE_SIM_SEEDS=100000 cargo test -p stele-consensus --release --test simulation`
//! (`STELE_SIM_SEED_START=n` shifts the range).
//! One seed: `STELE_SIM_SEED=n cargo test -p stele-consensus --test simulation`.

mod sim;

use std::ops::Range;

const QUICK_SEEDS: u64 = 500;
const PARTS: u64 = 4;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The seeds test `part` of `PARTS` runs.
fn seeds(part: u64) -> Range<u64> {
    if let Some(seed) = env_u64("STELE_SIM_SEED") {
        return if part == 0 { seed..seed + 1 } else { 0..0 };
    }
    let total = env_u64("STELE_SIM_SEEDS").unwrap_or(QUICK_SEEDS);
    let start = env_u64("STELE_SIM_SEED_START").unwrap_or(0);
    let per = total.div_ceil(PARTS);
    start + (part * per).min(total)..start + ((part + 1) * per).min(total)
}

fn run_part(part: u64) {
    let mut failures = Vec::new();
    for seed in seeds(part) {
        if let Err(e) = sim::run_seed(seed) {
            failures.push(e);
            if failures.len() >= 3 {
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn random_faults_keep_agreement_and_recover_part_0() {
    run_part(0);
}

#[test]
fn random_faults_keep_agreement_and_recover_part_1() {
    run_part(1);
}

#[test]
fn random_faults_keep_agreement_and_recover_part_2() {
    run_part(2);
}

#[test]
fn random_faults_keep_agreement_and_recover_part_3() {
    run_part(3);
}

#[test]
fn same_seed_gives_the_same_run() {
    let a = sim::run_seed(12).expect("seed 12 passes");
    let b = sim::run_seed(12).expect("seed 12 passes");
    assert_eq!(
        (a.committed_height, a.messages_sent, a.time_ms, a.max_view),
        (b.committed_height, b.messages_sent, b.time_ms, b.max_view)
    );
}

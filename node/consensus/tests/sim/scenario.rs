//! Seeded fault scenarios: a seed picks the cluster size, the scenario and
//! every random choice inside it.

use super::rng::Rng;
use super::world::{Byzantine, Faults, Outcome, World};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Clean,
    Lossy,
    PrimaryIsolated,
    MinorityPartition,
    EvenSplit,
    CrashRestart,
    EquivocatingPrimary,
    ConflictingVotes,
    Forger,
    Silent,
    StaleSpam,
    Twins,
    /// Everything at once: lossy network, a partition, crashes, Byzantine.
    Chaos,
}

pub const SCENARIOS: [Scenario; 13] = [
    Scenario::Clean,
    Scenario::Lossy,
    Scenario::PrimaryIsolated,
    Scenario::MinorityPartition,
    Scenario::EvenSplit,
    Scenario::CrashRestart,
    Scenario::EquivocatingPrimary,
    Scenario::ConflictingVotes,
    Scenario::Forger,
    Scenario::Silent,
    Scenario::StaleSpam,
    Scenario::Twins,
    Scenario::Chaos,
];

/// Blocks every live honest replica must commit after the faults heal.
pub const LIVENESS_BLOCKS: u64 = 4;
/// Virtual time allowed for that after the heal.
pub const LIVENESS_MS: u64 = 200_000;

/// The plan a seed expands to.
#[derive(Debug, Clone)]
pub struct Plan {
    pub n: usize,
    pub scenario: Scenario,
    pub byzantine: Vec<(u32, Byzantine)>,
    pub faults: Faults,
}

pub fn plan(seed: u64) -> Plan {
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let scenario = SCENARIOS[(seed % SCENARIOS.len() as u64) as usize];
    let n: usize = [1, 4, 4, 7][rng.below(4) as usize];
    let f = (n - 1) / 3;
    let heal_ms = rng.range(1_500, 3_500);
    let mut faults = Faults {
        drop_permille: rng.range(0, 30),
        duplicate_permille: rng.range(0, 30),
        delay_min_ms: 1,
        delay_max_ms: rng.range(2, 40),
        partition: None,
        crashes: Vec::new(),
        heal_ms,
    };
    let mut byzantine = Vec::new();
    let random_other = |rng: &mut Rng, not: &[u32]| loop {
        let i = rng.below(n as u64) as u32;
        if !not.contains(&i) {
            return i;
        }
    };
    let mut byz = |rng: &mut Rng, b: Byzantine, index: Option<u32>| {
        if f == 0 {
            return;
        }
        let taken: Vec<u32> = Vec::new();
        let i = index.unwrap_or_else(|| random_other(rng, &taken));
        byzantine.push((i, b));
        if f >= 2 {
            // With f = 2, a second, different Byzantine replica.
            let extra = [
                Byzantine::Silent,
                Byzantine::ConflictingVotes,
                Byzantine::Forger,
                Byzantine::StaleSpam,
            ][rng.below(4) as usize];
            let j = random_other(rng, &[i]);
            byzantine.push((j, extra));
        }
    };
    let low_index = rng.below(2) as u32;
    match scenario {
        Scenario::Clean => {
            faults.drop_permille = 0;
            faults.duplicate_permille = 0;
        }
        Scenario::Lossy => {
            faults.drop_permille = rng.range(50, 250);
            faults.duplicate_permille = rng.range(20, 200);
            faults.delay_max_ms = rng.range(20, 300);
        }
        Scenario::PrimaryIsolated => {
            let groups = vec![vec![0], (1..n as u32).collect()];
            faults.partition = Some((groups, rng.range(100, 1_000), heal_ms));
        }
        Scenario::MinorityPartition => {
            let mut all: Vec<u32> = (0..n as u32).collect();
            let k = f.max(1).min(n);
            let minority: Vec<u32> = (0..k)
                .map(|_| all.remove(rng.below(all.len() as u64) as usize))
                .collect();
            faults.partition = Some((vec![minority, all], rng.range(0, 1_000), heal_ms));
        }
        Scenario::EvenSplit => {
            let half = n.div_ceil(2) as u32;
            let groups = vec![(0..half).collect(), (half..n as u32).collect()];
            faults.partition = Some((groups, rng.range(0, 1_000), heal_ms));
        }
        Scenario::CrashRestart => {
            let crashes = rng.range(1, n as u64);
            for _ in 0..crashes {
                let v = rng.below(n as u64) as u32;
                let at = rng.range(0, heal_ms - 500);
                let back = rng.range(at + 1, heal_ms);
                let host = rng.below(2) == 0;
                if faults.crashes.iter().all(|(c, _, _, _)| *c != v) {
                    faults.crashes.push((v, at, back, host));
                }
            }
        }
        Scenario::EquivocatingPrimary => byz(&mut rng, Byzantine::EquivocatingPrimary, Some(0)),
        Scenario::ConflictingVotes => byz(&mut rng, Byzantine::ConflictingVotes, None),
        Scenario::Forger => byz(&mut rng, Byzantine::Forger, None),
        Scenario::Silent => byz(&mut rng, Byzantine::Silent, Some(low_index)),
        Scenario::StaleSpam => byz(&mut rng, Byzantine::StaleSpam, None),
        Scenario::Twins => byz(&mut rng, Byzantine::Twin, Some(0)),
        Scenario::Chaos => {
            faults.drop_permille = rng.range(20, 150);
            faults.duplicate_permille = rng.range(20, 100);
            faults.delay_max_ms = rng.range(10, 200);
            let cut = rng.range(1, n as u64) as u32;
            let groups = vec![(0..cut).collect(), (cut..n as u32).collect()];
            let from = rng.range(0, heal_ms / 2);
            faults.partition = Some((groups, from, rng.range(from + 1, heal_ms)));
            let v = rng.below(n as u64) as u32;
            let at = rng.range(0, heal_ms - 500);
            let back = rng.range(at + 1, heal_ms);
            faults.crashes.push((v, at, back, rng.below(2) == 0));
            let behaviour = [
                Byzantine::Silent,
                Byzantine::EquivocatingPrimary,
                Byzantine::ConflictingVotes,
                Byzantine::Forger,
                Byzantine::StaleSpam,
                Byzantine::Twin,
            ][rng.below(6) as usize];
            let index = rng.below(n as u64) as u32;
            byz(&mut rng, behaviour, Some(index));
        }
    }
    Plan {
        n,
        scenario,
        byzantine,
        faults,
    }
}

/// Runs one seed: safety is checked on every commit; after the heal every
/// live honest replica must commit `LIVENESS_BLOCKS` more blocks within a
/// bounded number of views.
pub fn run_seed(seed: u64) -> Result<Outcome, String> {
    let p = plan(seed);
    let result = std::panic::catch_unwind(|| run_plan(seed, &p)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panicked: {msg}"))
    });
    result.map_err(|e| {
        format!(
            "simulation seed {seed} failed (n = {}, {:?}, byzantine {:?}): {e}\n\
             reproduce with: STELE_SIM_SEED={seed} cargo test -p stele-consensus --test simulation",
            p.n, p.scenario, p.byzantine
        )
    })
}

pub fn run_plan(seed: u64, p: &Plan) -> Result<Outcome, String> {
    let mut w = World::new(seed, p.n, &p.byzantine, p.faults.clone());
    let heal = p.faults.heal_ms;
    w.run(heal, |_| false)?;
    let height_at_heal = w.max_honest_height();
    let view_at_heal = w.max_honest_view();
    let target = height_at_heal + LIVENESS_BLOCKS;
    w.run(heal + LIVENESS_MS, |w| w.min_live_honest_height() >= target)?;
    if w.min_live_honest_height() < target {
        return Err(format!(
            "liveness: {} ms after the heal the slowest honest replica is at height {} (target {target}), views {view_at_heal} -> {}",
            LIVENESS_MS,
            w.min_live_honest_height(),
            w.max_honest_view()
        ));
    }
    let views = w.max_honest_view() - view_at_heal;
    let bound = 2 * p.n as u64 + 2;
    if views > bound {
        return Err(format!(
            "liveness: recovery took {views} views after the heal, bound {bound}"
        ));
    }
    if w.double_sign_refusals() > 0 {
        return Err("an honest replica tried to sign two values for one slot".into());
    }
    Ok(w.outcome())
}

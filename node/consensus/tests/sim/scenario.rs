//! Seeded fault scenarios: a seed picks the cluster size, the scenario and
//! every random choice inside it.

use super::rng::Rng;
use super::world::{Byzantine, Change, Faults, Outcome, World};

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

/// Most set changes a run submits.
const CHANGES_MAX: usize = 8;

/// The plan a seed expands to.
#[derive(Debug, Clone)]
pub struct Plan {
    pub n: usize,
    pub scenario: Scenario,
    pub byzantine: Vec<(u32, Byzantine)>,
    pub faults: Faults,
    /// Changes of validator set, in order; empty for a fixed set.
    pub changes: Vec<Change>,
}

/// A run of set changes (ADR 0010) that ends with none of the genesis
/// validators left: validators are added, removed, replaced (a key
/// rotation is a replacement) and reweighted, a few at a time, submitted
/// over the faulty period. The Byzantine ids of `byzantine` never hold a
/// third of a set's power: a set that would gets them removed.
fn plan_changes(rng: &mut Rng, n: usize, byzantine: &[u32], heal_ms: u64) -> Vec<Change> {
    let mut set: Vec<(u32, u64)> = (0..n as u32).map(|i| (i, 1)).collect();
    let mut next_id = n as u32;
    let mut sets = Vec::new();
    let is_genesis = |id: u32| (id as usize) < n;
    while set.iter().any(|(id, _)| is_genesis(*id)) {
        let before = set.clone();
        let genesis_at: Vec<usize> = (0..set.len()).filter(|i| is_genesis(set[*i].0)).collect();
        let last = sets.len() + 1 >= CHANGES_MAX;
        match rng.below(5) {
            _ if last => {
                // The last change replaces whoever of the genesis is left.
                for i in genesis_at {
                    set[i] = (next_id, set[i].1);
                    next_id += 1;
                }
            }
            0 if set.len() < n + 2 => {
                set.push((next_id, 1));
                next_id += 1;
            }
            1 if set.len() > 1 => {
                let i = genesis_at[rng.below(genesis_at.len() as u64) as usize];
                set.remove(i);
            }
            2 => {
                let i = rng.below(set.len() as u64) as usize;
                set[i].1 = rng.range(1, 3);
            }
            _ => {
                // Replace up to a third of the set (at least one).
                let k = (set.len() / 3).max(1).min(genesis_at.len());
                for &i in &genesis_at[..k] {
                    set[i] = (next_id, set[i].1);
                    next_id += 1;
                }
            }
        }
        let power = |s: &[(u32, u64)], byz: bool| -> u64 {
            s.iter()
                .filter(|(id, _)| byzantine.contains(id) == byz)
                .map(|(_, p)| p)
                .sum()
        };
        while power(&set, true) > 0
            && power(&set, true) * 3 >= power(&set, true) + power(&set, false)
        {
            set.retain(|(id, _)| !byzantine.contains(id));
            if set.is_empty() {
                set.push((next_id, 1));
                next_id += 1;
            }
        }
        if set != before {
            sets.push(set.clone());
        }
    }
    let count = sets.len() as u64;
    sets.into_iter()
        .enumerate()
        .map(|(i, members)| Change {
            at_ms: (i as u64 + 1) * heal_ms / (count + 1) + rng.range(0, 200),
            members,
        })
        .collect()
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
    // Three runs in four change the validator set, with the same faults.
    let byz_ids: Vec<u32> = byzantine.iter().map(|(id, _)| *id).collect();
    let changes = if rng.below(4) == 0 {
        Vec::new()
    } else {
        plan_changes(&mut rng, n, &byz_ids, heal_ms)
    };
    // Joiners are in the fault plan too: they may crash, and they sit in
    // the second group of a partition.
    let pool = changes
        .iter()
        .flat_map(|c| c.members.iter().map(|(id, _)| *id + 1))
        .max()
        .unwrap_or(0)
        .max(n as u32);
    if let Some((groups, _, _)) = &mut faults.partition
        && let Some(last) = groups.last_mut()
    {
        last.extend(n as u32..pool);
    }
    if scenario == Scenario::CrashRestart && pool > n as u32 && rng.chance(500) {
        let id = rng.range(n as u64, pool as u64 - 1) as u32;
        let at = rng.range(0, heal_ms - 500);
        let back = rng.range(at + 1, heal_ms);
        faults.crashes.push((id, at, back, rng.below(2) == 0));
    }
    Plan {
        n,
        scenario,
        byzantine,
        faults,
        changes,
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
            "simulation seed {seed} failed (n = {}, {:?}, byzantine {:?}, {} set changes): {e}\n\
             reproduce with: STELE_SIM_SEED={seed} cargo test -p stele-consensus --test simulation",
            p.n,
            p.scenario,
            p.byzantine,
            p.changes.len()
        )
    })
}

pub fn run_plan(seed: u64, p: &Plan) -> Result<Outcome, String> {
    let mut w = World::with_changes(seed, p.n, &p.byzantine, p.faults.clone(), p.changes.clone());
    let heal = p.faults.heal_ms;
    w.run(heal, |_| false)?;
    let height_at_heal = w.max_honest_height();
    let view_at_heal = w.max_honest_view();
    let target = height_at_heal + LIVENESS_BLOCKS;
    // Every change takes effect after the heal at the latest.
    let epochs = p.changes.len() as u64;
    let done =
        |w: &World| w.min_live_honest_height() >= target && w.min_live_honest_epoch() >= epochs;
    w.run(heal + LIVENESS_MS, done)?;
    if !done(&w) {
        return Err(format!(
            "liveness: {} ms after the heal the slowest honest node is at height {} (target {target}) in epoch {} (target {epochs}), views {view_at_heal} -> {}",
            LIVENESS_MS,
            w.min_live_honest_height(),
            w.min_live_honest_epoch(),
            w.max_honest_view()
        ));
    }
    if !p.changes.is_empty() && w.latest_members().iter().any(|id| (*id as usize) < p.n) {
        return Err(format!(
            "reconfiguration: genesis validators left in the last set {:?}",
            w.latest_members()
        ));
    }
    let chain_epochs = w.check_set_chain()?;
    if chain_epochs != epochs {
        return Err(format!(
            "set chain: a client following certificates reached epoch {chain_epochs}, the chain {epochs}"
        ));
    }
    let views = w.max_honest_view() - view_at_heal;
    // Each set change may cost a view change of its own on top (a primary
    // that left, or one still catching up into the new epoch).
    let bound = 2 * p.n as u64 + 2 + epochs;
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

//! `estimate_gas`: the smallest gas limit that gives a transaction the same
//! outcome as all the gas it can buy.
//!
//! The gas a run with plenty used is not always enough as a limit: a call
//! hands the callee at most 63/64 of the gas left, so a limit of exactly
//! `gas_used` can starve a nested call that needed the 64th its caller kept
//! back (the call fails, or a chain that recurses while gas lasts stops
//! shallower). So: run once with the cap; if a run with its `gas_used`
//! has the same outcome (the common case, two runs), that is the answer;
//! otherwise search between the two: gallop up from `gas_used` by a bound
//! derived from the trace, then bisect. Every limit returned was run and gave the same
//! outcome; with the search finished, one gas less did not (assuming a
//! larger limit never turns the same outcome into another, which holds
//! unless a contract reads `gas_left`).

use std::time::{Duration, Instant};

use stele_client::api::GasEstimate;
use stele_types::ExecStatus;
use stele_vm::{CallTrace, FailKind, Failure};

use stele_exec::Applied;

/// Most simulations one estimate runs, the run with the cap included.
/// Exactness needs log2 of the final window: with the step from the trace
/// a nested call chain typically takes 12-20 runs; 40 keeps the search
/// exact up to a cap of 10^9 gas (the default `view_gas_max`) even when
/// the need is far from `gas_used` (code that recurses while `gas_left`
/// lasts): at most 8 gallops and 30 bisections.
pub(crate) const ESTIMATE_RUNS_MAX: u32 = 40;

/// Growth of the gallop's step after each probe below the need.
const GALLOP_FACTOR: u64 = 8;

/// What a probe found at one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// The same outcome as with the cap.
    Same,
    /// Another outcome.
    Different,
    /// The run was stopped by the wall clock, or the time is up: no answer.
    Stopped,
}

/// The result of [`smallest_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    /// A limit that gave the same outcome.
    pub limit: u64,
    /// Whether `limit - 1` is known not to (the search finished).
    pub exact: bool,
    /// Probes run.
    pub probes: u32,
}

/// The smallest limit in `lo + 1..=hi` for which `probe` answers
/// [`Probe::Same`], given that `lo` does not and `hi` does: first galloping
/// up from `lo` by `first_step`, growing the step while the outcome differs
/// (a close upper bound in a few probes, where bisecting from `hi` would
/// take ~30), then by bisection; at most `probes_max` probes. Stops
/// early, inexact, on [`Probe::Stopped`].
pub(crate) fn smallest_limit<E>(
    mut lo: u64,
    mut hi: u64,
    first_step: u64,
    probes_max: u32,
    mut probe: impl FnMut(u64) -> Result<Probe, E>,
) -> Result<Found, E> {
    let mut probes = 0;
    let mut step = first_step;
    while hi - lo > 1 {
        if probes >= probes_max {
            return Ok(Found {
                limit: hi,
                exact: false,
                probes,
            });
        }
        let gallop = lo.saturating_add(step);
        let at = if step > 0 && gallop < hi {
            gallop
        } else {
            step = 0;
            lo + (hi - lo) / 2
        };
        probes += 1;
        match probe(at)? {
            Probe::Same => {
                hi = at;
                step = 0;
            }
            Probe::Different => {
                lo = at;
                step = step.saturating_mul(GALLOP_FACTOR);
            }
            Probe::Stopped => {
                return Ok(Found {
                    limit: hi,
                    exact: false,
                    probes,
                });
            }
        }
    }
    Ok(Found {
        limit: hi,
        exact: true,
        probes,
    })
}

/// Whether two runs had the same outcome: status, output, events, the new
/// contract, and every nested call's target, status and output (gas
/// aside). Comparing the calls catches a starved sub-call whose failure
/// the caller absorbed.
pub(crate) fn same_outcome(a: &Applied, b: &Applied) -> bool {
    fn same_frame(a: &CallTrace, b: &CallTrace) -> bool {
        a.contract == b.contract
            && a.method == b.method
            && a.value == b.value
            && a.status == b.status
            && a.output == b.output
            && a.calls.len() == b.calls.len()
            && a.calls.iter().zip(&b.calls).all(|(x, y)| same_frame(x, y))
    }
    let (ra, rb) = (&a.receipt, &b.receipt);
    ra.status == rb.status
        && ra.output == rb.output
        && ra.events == rb.events
        && ra.contract_address == rb.contract_address
        && match (&a.trace, &b.trace) {
            (None, None) => true,
            (Some(x), Some(y)) => same_frame(x, y),
            _ => false,
        }
}

/// Whether the wall-clock backstop stopped any frame of the run.
pub(crate) fn timed_out(a: &Applied) -> bool {
    fn frame(t: &CallTrace, text: &[u8]) -> bool {
        (t.status == ExecStatus::Failed && t.output == text)
            || t.calls.iter().any(|c| frame(c, text))
    }
    let text = Failure::Failed(FailKind::Timeout).to_string().into_bytes();
    (a.receipt.status == ExecStatus::Failed && a.receipt.output == text)
        || a.trace.as_ref().is_some_and(|t| frame(t, &text))
}

/// Gas a frame may need beyond what it used with plenty: for each call it
/// made, the callee's own need plus the 64th (and rounding) its caller
/// keeps back; calls run one after another, so the largest counts.
pub(crate) fn held_back(frame: &CallTrace) -> u64 {
    frame
        .calls
        .iter()
        .map(|c| {
            let extra = held_back(c);
            let need = c.gas_used.saturating_add(extra);
            extra.saturating_add(need / 63).saturating_add(2)
        })
        .max()
        .unwrap_or(0)
}

/// The estimate, given `run(limit, timeout_ms)` (a simulation with that
/// gas limit), the cap (all the gas the sender can buy, within the node's
/// caps) and the wall-clock budget of one simulation: the run with the cap
/// gets `timeout_ms`, the search shares another `timeout_ms`.
pub(crate) fn estimate<E>(
    cap: u64,
    timeout_ms: u64,
    mut run: impl FnMut(u64, u64) -> Result<Applied, E>,
) -> Result<GasEstimate, E> {
    let reference = run(cap, timeout_ms)?;
    let used = reference.receipt.gas_used;
    let status = reference.receipt.status;
    // A run out of gas (or stopped by the clock) with all the gas fails
    // with any limit; what it costs is the answer.
    if status == ExecStatus::OutOfGas || timed_out(&reference) || used >= cap {
        return Ok(GasEstimate {
            gas: used.min(cap),
            status,
            exact: true,
        });
    }
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let mut probe = |limit: u64| -> Result<Probe, E> {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as u64;
        if left == 0 {
            return Ok(Probe::Stopped);
        }
        let applied = run(limit, left)?;
        Ok(if timed_out(&applied) {
            Probe::Stopped
        } else if same_outcome(&applied, &reference) {
            Probe::Same
        } else {
            Probe::Different
        })
    };
    match probe(used)? {
        Probe::Same => {
            return Ok(GasEstimate {
                gas: used,
                status,
                exact: true,
            });
        }
        Probe::Stopped => {
            return Ok(GasEstimate {
                gas: cap,
                status,
                exact: false,
            });
        }
        Probe::Different => {}
    }
    // The bound from the trace is enough unless the code reads `gas_left`;
    // a 32nd of the gas used is the least step, so galloping from a low
    // bound still reaches a large need in a few probes.
    let step = reference
        .trace
        .as_ref()
        .map_or(0, held_back)
        .max(used / 32)
        .max(1);
    // Two runs so far.
    let found = smallest_limit(used, cap, step, ESTIMATE_RUNS_MAX - 2, probe)?;
    Ok(GasEstimate {
        gas: found.limit,
        status,
        exact: found.exact,
    })
}

#[cfg(test)]
mod tests {
    use stele_types::{Address, Hash, Receipt};

    use super::*;

    fn threshold(t: u64) -> impl FnMut(u64) -> Result<Probe, ()> {
        move |l| {
            Ok(if l >= t {
                Probe::Same
            } else {
                Probe::Different
            })
        }
    }

    #[test]
    fn bisection_finds_the_threshold_exactly_in_log_probes() {
        for t in [2, 3, 1_000, 123_457, 999_999_999, 1_000_000_000] {
            let f = smallest_limit(1, 1_000_000_000, 0, 32, threshold(t)).unwrap();
            assert_eq!((f.limit, f.exact), (t, true), "threshold {t}");
            assert!(f.probes <= 30, "{} probes for {t}", f.probes);
        }
    }

    #[test]
    fn galloping_from_below_brackets_the_threshold_in_few_probes() {
        // A step that covers the need at once: one probe, then bisection
        // of a window of 4 000.
        let f = smallest_limit(100_000, 1_000_000_000, 4_000, 32, threshold(103_210)).unwrap();
        assert_eq!((f.limit, f.exact), (103_210, true));
        assert!(f.probes <= 13, "{} probes", f.probes);
        // A step far too small grows up to the need; from the smallest
        // transaction (21 000 gas, step 656) to the cap, still exact.
        for (lo, step) in [(100_000, 3_125), (21_000, 656)] {
            for t in [lo + 1, lo + 500, 2_300_000, 999_999_999, 1_000_000_000] {
                let f =
                    smallest_limit(lo, 1_000_000_000, step, ESTIMATE_RUNS_MAX - 2, threshold(t))
                        .unwrap();
                assert_eq!((f.limit, f.exact), (t, true), "threshold {t}");
            }
        }
    }

    #[test]
    fn out_of_probes_or_time_the_answer_is_a_checked_limit_marked_inexact() {
        let f = smallest_limit(0, 1 << 40, 0, 5, threshold(77)).unwrap();
        assert!(!f.exact && f.limit >= 77 && f.probes == 5, "{f:?}");
        let mut n = 0;
        let f = smallest_limit(0, 1 << 20, 0, 32, |l| {
            n += 1;
            assert!(l > 0);
            Ok::<_, ()>(if n == 1 { Probe::Same } else { Probe::Stopped })
        })
        .unwrap();
        assert_eq!((f.limit, f.exact), (1 << 19, false));
    }

    fn frame(gas_used: u64, status: ExecStatus, calls: Vec<CallTrace>) -> CallTrace {
        CallTrace {
            caller: Address([1; 20]),
            contract: Address([2; 20]),
            method: "m".into(),
            value: 0,
            gas_budget: 1_000_000,
            gas_used,
            status,
            output: vec![],
            calls,
            logs: vec![],
        }
    }

    fn applied(status: ExecStatus, gas_used: u64, trace: CallTrace) -> Applied {
        Applied {
            receipt: Receipt {
                tx_hash: Hash::ZERO,
                status,
                gas_used,
                events: vec![],
                output: vec![],
                contract_address: None,
            },
            trace: Some(trace),
        }
    }

    #[test]
    fn outcomes_compare_every_nested_call_but_not_gas() {
        let ok = ExecStatus::Success;
        let a = applied(ok, 500, frame(400, ok, vec![frame(100, ok, vec![])]));
        let b = applied(ok, 450, frame(350, ok, vec![frame(90, ok, vec![])]));
        assert!(same_outcome(&a, &b));
        // The caller absorbed a starved callee: same status, not the same.
        let c = applied(
            ok,
            450,
            frame(350, ok, vec![frame(90, ExecStatus::OutOfGas, vec![])]),
        );
        assert!(!same_outcome(&a, &c));
    }

    #[test]
    fn the_bound_from_the_trace_covers_each_level_s_64th() {
        let ok = ExecStatus::Success;
        let leaf = frame(63_000, ok, vec![]);
        let mid = frame(70_000, ok, vec![leaf]);
        let top = frame(80_000, ok, vec![mid]);
        // The leaf needs 63 000 (+1 000 kept back by mid, +2), mid needs
        // 70 000 + 1 002 (+ its 64th, +2).
        assert_eq!(held_back(&top), 1_002 + 71_002 / 63 + 2);
    }
}

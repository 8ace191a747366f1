//! Simulated throughput, messages per committed block and views to recover
//! from a crashed primary, for n = 4, 7, 10. Prints one JSON object per
//! line. Not a timed test; run by hand:
//! `cargo bench -p stele-consensus --bench sim`.

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::time::Instant;

use sim::world::{Faults, World};

const BLOCKS: u64 = 300;

fn clean() -> Faults {
    Faults {
        delay_min_ms: 1,
        delay_max_ms: 5,
        heal_ms: 0,
        ..Faults::default()
    }
}

fn throughput(n: usize) {
    let mut w = World::new(1, n, &[], clean());
    w.block_interval_ms = 1;
    let wall = Instant::now();
    w.run(u64::MAX, |w| w.min_live_honest_height() >= BLOCKS)
        .expect("no invariant violation");
    let wall_ms = wall.elapsed().as_secs_f64() * 1e3;
    let o = w.outcome();
    let blocks = w.min_live_honest_height();
    println!(
        "{{\"bench\":\"throughput\",\"n\":{n},\"blocks\":{blocks},\"virtual_ms\":{},\"blocks_per_virtual_s\":{:.1},\"messages_per_block\":{:.1},\"bytes_per_block\":{:.0},\"wall_ms_per_block\":{:.2}}}",
        o.time_ms,
        blocks as f64 * 1e3 / o.time_ms as f64,
        o.messages_sent as f64 / blocks as f64,
        o.message_bytes as f64 / blocks as f64,
        wall_ms / blocks as f64
    );
}

fn crashed_primary(n: usize) {
    let crash_ms = 2_000;
    let faults = Faults {
        crashes: vec![(0, crash_ms, u64::MAX / 2, false)],
        ..clean()
    };
    let mut w = World::new(2, n, &[], faults);
    w.run(crash_ms, |_| false).expect("no invariant violation");
    let height = w.min_live_honest_height();
    let view = w.max_honest_view();
    w.run(u64::MAX / 4, |w| {
        w.time_ms > crash_ms && w.min_live_honest_height() > height + 1
    })
    .expect("no invariant violation");
    println!(
        "{{\"bench\":\"crashed_primary\",\"n\":{n},\"views_to_recover\":{},\"recovery_virtual_ms\":{},\"view_timeout_ms\":{}}}",
        w.max_honest_view() - view,
        w.time_ms - crash_ms,
        w.cfg.view_timeout_ms
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` must not run it.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    for n in [4, 7, 10] {
        throughput(n);
    }
    for n in [4, 7, 10] {
        crashed_primary(n);
    }
}

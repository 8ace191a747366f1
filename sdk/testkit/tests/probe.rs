//! What the SDK guarantees, tried on the real VM with contracts/probe.
#![allow(clippy::unwrap_used)] // tests: a failure here is a test failure

use stele_testkit::{Contract, ExecStatus, TestChain};

fn probe() -> Contract {
    Contract::build(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contracts/probe"
    ))
    .unwrap()
}

#[test]
fn a_view_cannot_write_or_emit_even_when_a_transaction_calls_it() {
    let mut chain = TestChain::new();
    let alice = chain.account();
    let p = chain.deploy(&alice, &probe(), ()).address();
    chain.call(&alice, &p, "poke", (3u64,)).success();
    assert_eq!(chain.view(&p, "get", ()).decode::<u64>(), 3);

    // Called as a transaction, where writes would otherwise persist.
    for method in ["write_in_view", "emit_in_view"] {
        let out = chain.call(&alice, &p, method, ());
        assert_eq!(
            out.status,
            ExecStatus::Reverted,
            "{method}: {}",
            out.describe()
        );
        assert_eq!(
            out.revert_message(),
            "a #[view] method cannot write storage, emit events or move value"
        );
        assert!(out.events.is_empty(), "{method}");
    }
    assert_eq!(chain.view(&p, "get", ()).decode::<u64>(), 3);
    // And as a view.
    chain
        .view(&p, "write_in_view", ())
        .assert_failure(ExecStatus::Reverted, "cannot write storage");
}

#[test]
fn a_view_runs_at_the_last_block_and_a_transaction_one_later() {
    let mut chain = TestChain::new();
    let alice = chain.account();
    let p = chain.deploy(&alice, &probe(), ()).address();
    chain.advance_blocks(3);
    let (height, time) = chain.view(&p, "now", ()).decode::<(u64, u64)>();
    assert_eq!(height + 1, chain.height());
    assert!(time < chain.timestamp_ms());
    // The clock moving without blocks does not move what a view sees.
    chain.advance_time_ms(5_000);
    assert_eq!(
        chain.view(&p, "now", ()).decode::<(u64, u64)>(),
        (height, time)
    );
}

#[test]
fn debug_logs_show_in_the_outcome_in_order_failed_or_not_and_in_views() {
    let mut chain = TestChain::new();
    let alice = chain.account();
    let p = chain.deploy(&alice, &probe(), ()).address();
    let expected = [
        format!("logged n=4 by {}", alice.to_string().to_lowercase()),
        "a plain line".to_owned(),
    ];
    let ok = chain.call(&alice, &p, "logged", (4u64, false));
    assert_eq!(ok.success().decode::<u64>(), 5);
    assert_eq!(ok.logs(), expected);
    assert!(ok.events.is_empty());

    let failed = chain.call(&alice, &p, "logged", (4u64, true));
    failed.assert_failure(ExecStatus::Reverted, "asked to fail");
    assert_eq!(failed.logs(), expected);
    assert!(
        failed.describe().ends_with("\n  log: a plain line"),
        "{}",
        failed.describe()
    );

    chain.call(&alice, &p, "poke", (9u64,)).success();
    let view = chain.view(&p, "logged_view", ());
    assert_eq!(view.decode::<u64>(), 9);
    assert_eq!(view.logs(), ["viewing n=9"]);
}

#[test]
fn the_heap_fills_the_initial_memory_before_it_grows_memory() {
    let mut chain = TestChain::new();
    let alice = chain.account();
    let code = probe();
    let initial = stele_vm::validate(&code.wasm, &stele_vm::VmLimits::LATEST)
        .unwrap()
        .initial_pages as u32;
    let p = chain.deploy(&alice, &code, ()).address();
    let heap = |sizes: Vec<u32>| {
        let want: u64 = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u64 + 1) * u64::from(*n))
            .sum();
        let (before, after, sum) = chain
            .view(&p, "heap_pages", (sizes,))
            .decode::<(u32, u32, u64)>();
        assert_eq!(sum, want, "every block holds what was written");
        (before, after)
    };
    // A call's usual allocations (the arguments' among them) fit the free
    // end of the initial memory.
    let (before, after) = heap(vec![16, 100, 2_000, 10_000]);
    assert_eq!(
        (before, after),
        (initial, initial),
        "small allocations grew memory"
    );
    // More than that grows memory, in one piece or many.
    let (before, after) = heap(vec![200_000]);
    assert!(after > before, "{before} -> {after}");
    let (before, after) = heap(vec![30_000; 12]);
    assert!(after > before, "{before} -> {after}");
    assert!(after <= before + 7, "{before} -> {after}: 360 KB took more");
}

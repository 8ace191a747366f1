//! Hostile contracts shared by the cluster fault tests and the adversarial
//! suite ([`crate::attack`]): modules that reach each resource issue 23
//! names, as WAT.

/// The issue-23 module: its data segment ends past its one page.
pub const SEGMENT_BOMB: &str = r#"(module (memory (export "memory") 1)
  (data (i32.const 65535) "XY")
  (func (export "init")) (func (export "run")))"#;

/// 2 000 locals, all live, over `blocks` nested guarded blocks: seconds of
/// Cranelift for a few tens of KB.
pub fn compile_bomb(blocks: u32) -> String {
    let mut body = String::new();
    for i in 0..blocks {
        let (a, b) = (i % 2_000, (i * 7 + 1) % 2_000);
        body.push_str(&format!(
            "(block (br_if 0 (i64.eqz (local.get {a}))) (local.set {b} (local.get {a}))"
        ));
    }
    body.push_str(&")".repeat(blocks as usize));
    format!(
        r#"(module (memory (export "memory") 1) (func (export "run") (local {}) {body}))"#,
        "i64 ".repeat(2_000)
    )
}

/// Storage iteration over the block's own deletes and over deletes an
/// earlier block committed, memory growth in every frame, the most events a
/// transaction may emit, a pointer chase over all the memory a frame may
/// have, and a dependent float chain.
pub const HOSTILE: &str = r#"(module
  (import "stele" "input_read" (func $input_read (param i32)))
  (import "stele" "storage_write" (func $write (param i32 i32 i32 i32)))
  (import "stele" "storage_remove" (func $remove (param i32 i32) (result i32)))
  (import "stele" "storage_next" (func $next (param i32 i32 i32 i32 i32 i32 i32 i32) (result i64)))
  (import "stele" "emit_event" (func $emit (param i32 i32 i32 i32)))
  (import "stele" "self_address" (func $self (param i32)))
  (import "stele" "call" (func $call (param i32 i32 i32 i32 i32 i32 i64) (result i32)))
  (import "stele" "revert" (func $revert (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "k")
  (data (i32.const 32) "grow")
  (func $key (param $i i32)
    (i32.store8 (i32.const 16) (i32.const 107))
    (i32.store (i32.const 17) (local.get $i)))
  (func (export "fill") (local $i i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const 2000)))
      (call $key (local.get $i))
      (call $write (i32.const 16) (i32.const 5) (i32.const 0) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
  (func (export "wipe_and_scan") (local $i i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const 2000)))
      (call $key (local.get $i))
      (drop (call $remove (i32.const 16) (i32.const 5)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (loop $l
      (drop (call $next (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0)
                        (i32.const 200) (i32.const 16) (i32.const 300) (i32.const 16)))
      (br $l)))
  (func (export "grow")
    (block $done (loop $l
      (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      (i32.store8 (i32.mul (i32.sub (memory.size) (i32.const 1)) (i32.const 65536)) (i32.const 1))
      (br $l)))
    (call $self (i32.const 64))
    (drop (call $call (i32.const 64) (i32.const 32) (i32.const 4) (i32.const 0) (i32.const 0)
                      (i32.const 96) (i64.const 0))))
  (func (export "events")
    (loop $l
      (call $emit (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 16384))
      (br $l)))
  (func (export "wipe") (local $i i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const 2000)))
      (call $key (local.get $i))
      (drop (call $remove (i32.const 16) (i32.const 5)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
  ;; One step from after each deleted key in turn, for ever.
  (func (export "scan_each") (local $i i32)
    (loop $l
      (local.set $i (i32.rem_u (i32.add (local.get $i) (i32.const 7)) (i32.const 2000)))
      (call $key (local.get $i))
      (drop (call $next (i32.const 0) (i32.const 1) (i32.const 16) (i32.const 5)
                        (i32.const 200) (i32.const 16) (i32.const 300) (i32.const 16)))
      (br $l)))
  ;; Grows to the frame's cap, links every 64-byte line into one cycle in
  ;; an order the prefetcher cannot follow, and follows it for ever.
  (func (export "chase") (local $i i32) (local $p i32) (local $lines i32)
    (block $done (loop $g
      (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      (br $g)))
    (local.set $lines (i32.mul (memory.size) (i32.const 1024)))
    (loop $build
      (i32.store (i32.shl (local.get $i) (i32.const 6))
        (i32.shl (i32.rem_u (i32.add (local.get $i) (i32.const 4093)) (local.get $lines)) (i32.const 6)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $build (i32.lt_u (local.get $i) (local.get $lines))))
    (loop $l
      (local.set $p (i32.load (local.get $p)))
      (br $l)))
  (func (export "floats") (local $f f64)
    (loop $l
      (local.set $f (f64.sqrt (f64.add (local.get $f) (f64.const 1))))
      (br $l)))
  (@custom "stele_reentrant" ""))"#;

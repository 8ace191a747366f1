//! Deploy-time instrumentation: a deterministic stack limit and, under
//! [`Metering::Instrumented`] schedules, gas metering.
//!
//! **Stack limit.** The native stack a Wasm call uses depends on the
//! compiler, its version and the host, so a native stack overflow is not a
//! deterministic event. Instead every defined function is rewritten to count
//! a "stack height" in a new mutable global (in the spirit of
//! wasm-instrument's stack limiter):
//!
//! ```text
//! prologue:  h = height + cost; height = h; if h > LIMIT { unreachable }
//!            block (result <function's result>)
//!              <original body, with `return` turned into a branch to this block>
//!            end
//! epilogue:  height = h - cost
//! ```
//!
//! `cost` is the function's parameters + locals + maximum operand-stack
//! height (from the validator) + a fixed frame overhead, so it bounds the
//! frame's real size. A branch to the function's outermost label lands after
//! the wrapper block exactly as it landed at the function's end before, so
//! every exit runs the epilogue; traps abandon the instance, which is never
//! reused. Callees restore the height they found, so the epilogue computes
//! the restored value from the local `h` instead of reading the global
//! again. The global is exported as `__stele_stack_height` so the runtime
//! can tell a stack-limit trap from the contract's own `unreachable`.
//!
//! **Gas.** The body is cut into metered blocks: runs that start at the
//! function's entry or right after `loop`, `if`, `else`, `end`, `br`,
//! `br_table`, `return` or `unreachable` (every place control can arrive
//! other than by falling through, and the start of dead code). A `br_if`
//! that branches leaves its block early, having paid for all of it. Each
//! block's cost (the sum of [`GasSchedule::op_fuel`] over its operators) is
//! charged before it runs:
//!
//! ```text
//! entry:        gas = __stele_gas
//! block start:  if gas < cost { __stele_gas = -1; unreachable }
//!               gas -= cost
//! call:         __stele_gas = gas; call f; gas = __stele_gas
//! exit:         __stele_gas = gas
//! ```
//!
//! The counter lives in a local (a register) and is stored to the exported
//! global `__stele_gas` before every call and at every exit, so host
//! functions, callees and the runtime see what is left whenever control
//! leaves the function normally. A loop without calls therefore pays a
//! subtract, a compare and a branch per iteration and touches no memory.
//! After a trap the global is stale, so the VM charges a trapped frame its
//! whole budget (a trap is never cheaper than the work before it). Operators
//! whose cost grows with an operand (`memory.grow`, bulk memory) charge that
//! part just before they run. Out of gas is an `unreachable` trap with the
//! global below zero. Unlike wasmtime's fuel check, whose out-of-fuel path
//! is a call into the runtime, a trap clobbers no registers, so loops keep
//! their values in registers.
//!
//! **Loops.** A loop that is only ever repeated by an unconditional `br`
//! pays its header block (the one right after `loop`) where control enters
//! the header: just before `loop`, and at each `br` back edge, which
//! becomes `gas -= cost; br_if (gas >= 0) <loop>; __stele_gas = -1;
//! unreachable`. Nothing runs between that charge and the header, so gas
//! and errors are exactly those of charging at the header, and the check
//! lands next to the back edge's own jump. Loops repeated by `br_if` or
//! `br_table` (the shape compilers give most loops) keep the charge at the
//! header. After a block that is or contains a loop the counter passes
//! through `gas ^= zero`, a load of a mutable global that is always zero:
//! without it Cranelift folds the next charge into the loop's
//! (`(gas - a) - b` into `gas - (a + b)`), which keeps the counter from
//! before the loop's last charge alive through every iteration and costs
//! the loop register moves.
//!
//! Function, global and type indices are unchanged (the globals are appended
//! last and contracts cannot import globals), so no other section needs
//! rewriting. Locals are appended after the function's own.

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, ExportKind, ExportSection, Function, GlobalSection,
    GlobalType, Instruction, Module, RawSection, ValType,
};
use wasmparser::{FunctionBody, Operator, Parser, Payload};

use crate::abi;
use crate::gas::{GasSchedule, Metering};
use crate::validate::{ModuleInfo, ValidationError, features};

/// Rewrites validated `code` with the stack-height counter, and with gas
/// metering when `gas` is [`Metering::Instrumented`]. `info` must come from
/// validating the same `code`.
pub fn instrument(
    code: &[u8],
    info: &ModuleInfo,
    stack_height_max: u32,
    gas: &GasSchedule,
) -> Result<Vec<u8>, ValidationError> {
    let metered = gas.metering == Metering::Instrumented;
    let mut module = Module::new();
    let mut re = RoundtripReencoder;
    let globals = Globals {
        height: info.globals,
        gas: info.globals + 1,
        zero: info.globals + 2,
    };
    let mut globals_done = false;
    let mut code_section: Option<CodeSection> = None;
    let mut defined = 0usize;
    let mut parser = Parser::new(0);
    parser.set_features(features());

    for payload in parser.parse_all(code) {
        let payload = payload.map_err(wasm_err)?;
        match payload {
            Payload::Version { .. } => {}
            Payload::GlobalSection(s) => {
                let mut section = GlobalSection::new();
                re.parse_global_section(&mut section, s)
                    .map_err(encode_err)?;
                push_globals(&mut section, metered);
                module.section(&section);
                globals_done = true;
            }
            Payload::ExportSection(s) => {
                if !globals_done {
                    let mut section = GlobalSection::new();
                    push_globals(&mut section, metered);
                    module.section(&section);
                    globals_done = true;
                }
                let mut section = ExportSection::new();
                re.parse_export_section(&mut section, s)
                    .map_err(encode_err)?;
                section.export(abi::STACK_HEIGHT_EXPORT, ExportKind::Global, globals.height);
                if metered {
                    section.export(abi::GAS_EXPORT, ExportKind::Global, globals.gas);
                }
                module.section(&section);
            }
            Payload::CodeSectionStart { .. } => code_section = Some(CodeSection::new()),
            Payload::CodeSectionEntry(body) => {
                let frame = FrameInfo {
                    stack_cost: info
                        .function_costs
                        .get(defined)
                        .copied()
                        // Unreachable for validated code; a missing cost traps on entry.
                        .unwrap_or(stack_height_max + 1),
                    stack_height_max,
                    result: info.function_results.get(defined).copied().flatten(),
                    // Validated code has an entry for every body; without
                    // one, new locals would alias the function's own.
                    first_free_local: info.function_locals.get(defined).copied().ok_or_else(
                        || ValidationError::InvalidWasm {
                            offset: 0,
                            message: "function body without validated locals".to_string(),
                        },
                    )?,
                };
                defined += 1;
                let f = if metered {
                    metered_function(&mut re, &body, &frame, globals, gas)?
                } else {
                    stack_limited_function(&mut re, &body, &frame, globals.height)?
                };
                if let Some(c) = code_section.as_mut() {
                    c.function(&f);
                }
            }
            other => {
                if let Some(c) = code_section.take() {
                    module.section(&c);
                }
                if let Some((id, range)) = other.as_section() {
                    module.section(&RawSection {
                        id,
                        data: &code[range],
                    });
                }
            }
        }
    }
    if let Some(c) = code_section.take() {
        module.section(&c);
    }
    Ok(module.finish())
}

/// Indices of the globals the instrumentation appends.
#[derive(Clone, Copy)]
struct Globals {
    height: u32,
    gas: u32,
    /// Mutable, never written, always zero (metered modules only).
    zero: u32,
}

/// What the rewrite of one function needs to know about it.
struct FrameInfo {
    stack_cost: u32,
    stack_height_max: u32,
    result: Option<wasmparser::ValType>,
    /// Parameters plus declared locals.
    first_free_local: u32,
}

fn push_globals(section: &mut GlobalSection, metered: bool) {
    section.global(
        GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i32_const(0),
    );
    if metered {
        // The gas counter, then the always-zero global.
        for _ in 0..2 {
            section.global(
                GlobalType {
                    val_type: ValType::I64,
                    mutable: true,
                    shared: false,
                },
                &ConstExpr::i64_const(0),
            );
        }
    }
}

fn read_locals(
    re: &mut RoundtripReencoder,
    body: &FunctionBody<'_>,
) -> Result<Vec<(u32, ValType)>, ValidationError> {
    let mut locals = Vec::new();
    let mut reader = body.get_locals_reader().map_err(wasm_err)?;
    for _ in 0..reader.get_count() {
        let (n, t) = reader.read().map_err(wasm_err)?;
        locals.push((n, re.val_type(t).map_err(encode_err)?));
    }
    Ok(locals)
}

fn wrapper_block(
    re: &mut RoundtripReencoder,
    result: Option<wasmparser::ValType>,
) -> Result<BlockType, ValidationError> {
    Ok(match result {
        None => BlockType::Empty,
        Some(t) => BlockType::Result(re.val_type(t).map_err(encode_err)?),
    })
}

/// The stack-limit rewrite alone, for [`Metering::WasmtimeFuel`] schedules.
/// wasmtime charges fuel for these instructions too, so they are part of
/// V1's and V2's gas and must never change.
fn stack_limited_function(
    re: &mut RoundtripReencoder,
    body: &FunctionBody<'_>,
    frame: &FrameInfo,
    height: u32,
) -> Result<Function, ValidationError> {
    let mut f = Function::new(read_locals(re, body)?);
    let block = wrapper_block(re, frame.result)?;
    emit_fuel_prologue(&mut f, height, frame.stack_cost, frame.stack_height_max);
    f.instruction(&Instruction::Block(block));
    let mut ops = body.get_operators_reader().map_err(wasm_err)?;
    let mut depth: u32 = 0;
    while !ops.eof() {
        let op = ops.read().map_err(wasm_err)?;
        match op {
            Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => {
                depth += 1;
            }
            Operator::End if depth == 0 => {
                // The function's own end: close the wrapper block.
                f.instruction(&Instruction::End);
                continue;
            }
            Operator::End => depth -= 1,
            Operator::Return => {
                f.instruction(&Instruction::Br(depth));
                continue;
            }
            _ => {}
        }
        let ins = re.instruction(op).map_err(encode_err)?;
        f.instruction(&ins);
    }
    emit_fuel_epilogue(&mut f, height, frame.stack_cost);
    f.instruction(&Instruction::End);
    Ok(f)
}

fn emit_fuel_prologue(f: &mut Function, global: u32, cost: u32, limit: u32) {
    // Costs and the limit are far below 2^31, so the i32 arithmetic is exact
    // and the unsigned comparison cannot wrap.
    f.instruction(&Instruction::GlobalGet(global));
    f.instruction(&Instruction::I32Const(cost as i32));
    f.instruction(&Instruction::I32Add);
    f.instruction(&Instruction::GlobalSet(global));
    f.instruction(&Instruction::GlobalGet(global));
    f.instruction(&Instruction::I32Const(limit as i32));
    f.instruction(&Instruction::I32GtU);
    f.instruction(&Instruction::If(BlockType::Empty));
    f.instruction(&Instruction::Unreachable);
    f.instruction(&Instruction::End);
}

fn emit_fuel_epilogue(f: &mut Function, global: u32, cost: u32) {
    f.instruction(&Instruction::GlobalGet(global));
    f.instruction(&Instruction::I32Const(cost as i32));
    f.instruction(&Instruction::I32Sub);
    f.instruction(&Instruction::GlobalSet(global));
}

/// One piece of a metered function's output.
enum Item<'a> {
    Op(Instruction<'a>),
    /// Charge the static cost of metered block `n`.
    Charge(usize),
    /// Charge this much fuel per unit of the i32 operand on top of the stack
    /// (which stays there).
    ChargePerUnit(u64),
    /// Store the counter to the global before a call.
    Sync,
    /// Reload the counter after a call.
    Reload,
    /// Just before `loop` number `n`: its header's charge when the loop
    /// pays it on entry and at its back edges (see [`LoopCharge`]).
    LoopEntry(usize),
    /// The first metered block of loop `n`: charged here unless the loop
    /// pays on entry and at its back edges.
    Header(usize),
    /// A `br` to loop `n`, `depth` labels out.
    BackEdge {
        n: usize,
        depth: u32,
    },
    /// `gas ^= zero`, which Cranelift cannot fold through (see the module
    /// documentation, "Loops").
    Opaque,
}

/// Where a loop's header block is charged (module documentation, "Loops").
struct LoopCharge {
    /// Index of the header block's cost.
    header: usize,
    /// No `br_if` or `br_table` targets the loop.
    at_edges: bool,
}

/// An open control frame of the body being metered.
struct Frame {
    kind: FrameKind,
    /// The frame is or contains a loop.
    has_loop: bool,
}

#[derive(Clone, Copy)]
enum FrameKind {
    Block,
    Loop(usize),
}

/// The locals a metered function gets.
#[derive(Clone, Copy)]
struct MeterLocals {
    gas: u32,
    height: u32,
    scratch: u32,
}

/// The stack-limit and gas rewrite, for [`Metering::Instrumented`].
fn metered_function(
    re: &mut RoundtripReencoder,
    body: &FunctionBody<'_>,
    frame: &FrameInfo,
    globals: Globals,
    gas: &GasSchedule,
) -> Result<Function, ValidationError> {
    let mut locals = read_locals(re, body)?;
    let l = MeterLocals {
        gas: frame.first_free_local,
        height: frame.first_free_local + 1,
        scratch: frame.first_free_local + 2,
    };
    locals.push((1, ValType::I64));
    locals.push((2, ValType::I32));
    let block = wrapper_block(re, frame.result)?;

    // First pass: the body as items, with each metered block's cost.
    let mut items: Vec<Item<'_>> = vec![Item::Charge(0)];
    let mut costs: Vec<u64> = vec![0];
    let mut ops = body.get_operators_reader().map_err(wasm_err)?;
    let mut loops: Vec<LoopCharge> = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    // The loop `relative` labels out, if that label is a loop's.
    let loop_at = |frames: &[Frame], relative: u32| -> Option<usize> {
        let i = frames
            .len()
            .checked_sub(1)?
            .checked_sub(relative as usize)?;
        match frames.get(i).map(|f| f.kind) {
            Some(FrameKind::Loop(n)) => Some(n),
            _ => None,
        }
    };
    while !ops.eof() {
        let op = ops.read().map_err(wasm_err)?;
        let cost = gas.op_fuel(&op);
        if let Some(c) = costs.last_mut() {
            *c = c.saturating_add(cost);
        }
        let per_unit = gas.op_fuel_per_unit(&op);
        if per_unit > 0 {
            items.push(Item::ChargePerUnit(per_unit));
        }
        // `br_if` does not end a block: when it branches, the rest of its
        // block was paid for and does not run (an overcharge of at most one
        // block per taken branch, which keeps a loop that exits through
        // `br_if` at one charge per iteration). Code after `br`, `br_table`,
        // `return` and `unreachable` is dead until the next `end`/`else`
        // and gets a block of its own, never charged.
        let ends_block = matches!(
            op,
            Operator::Loop { .. }
                | Operator::If { .. }
                | Operator::Else
                | Operator::End
                | Operator::Br { .. }
                | Operator::BrTable { .. }
                | Operator::Return
                | Operator::Unreachable
        );
        let is_call = matches!(op, Operator::Call { .. } | Operator::CallIndirect { .. });
        let mut back_edge = None;
        let mut after_loop = false;
        match op {
            Operator::Block { .. } | Operator::If { .. } => {
                frames.push(Frame {
                    kind: FrameKind::Block,
                    has_loop: false,
                });
            }
            Operator::Loop { .. } => {
                let n = loops.len();
                loops.push(LoopCharge {
                    header: costs.len(),
                    at_edges: true,
                });
                frames.push(Frame {
                    kind: FrameKind::Loop(n),
                    has_loop: true,
                });
                items.push(Item::LoopEntry(n));
            }
            Operator::End if frames.is_empty() => {
                // The function's own end: close the wrapper block.
                items.push(Item::Op(Instruction::End));
                continue;
            }
            Operator::End => {
                if let Some(frame) = frames.pop() {
                    after_loop = frame.has_loop;
                    if let Some(parent) = frames.last_mut() {
                        parent.has_loop |= frame.has_loop;
                    }
                }
            }
            Operator::Br { relative_depth } => {
                back_edge = loop_at(&frames, relative_depth).map(|n| (n, relative_depth));
            }
            Operator::BrIf { relative_depth } => {
                if let Some(l) = loop_at(&frames, relative_depth).and_then(|n| loops.get_mut(n)) {
                    l.at_edges = false;
                }
            }
            Operator::BrTable { ref targets } => {
                for relative in std::iter::once(Ok(targets.default())).chain(targets.targets()) {
                    let relative = relative.map_err(wasm_err)?;
                    if let Some(l) = loop_at(&frames, relative).and_then(|n| loops.get_mut(n)) {
                        l.at_edges = false;
                    }
                }
            }
            _ => {}
        }
        if let Some((n, depth)) = back_edge {
            items.push(Item::BackEdge { n, depth });
        } else {
            let is_loop = matches!(op, Operator::Loop { .. });
            let ins = match op {
                // Validation bounds nesting far below u32::MAX.
                Operator::Return => Instruction::Br(frames.len() as u32),
                other => re.instruction(other).map_err(encode_err)?,
            };
            if is_call {
                items.push(Item::Sync);
            }
            items.push(Item::Op(ins));
            if is_call {
                items.push(Item::Reload);
            }
            if is_loop {
                items.push(Item::Header(loops.len() - 1));
                costs.push(0);
                continue;
            }
        }
        if after_loop {
            items.push(Item::Opaque);
        }
        if ends_block {
            items.push(Item::Charge(costs.len()));
            costs.push(0);
        }
    }

    // Second pass: emit.
    let cost_of = |n: usize| -> Option<i64> {
        let cost = costs.get(n).copied().unwrap_or(0);
        (cost > 0).then(|| cost.min(i64::MAX as u64) as i64)
    };
    let mut f = Function::new(locals);
    emit_stack_prologue(&mut f, globals.height, l.height, frame);
    f.instruction(&Instruction::GlobalGet(globals.gas));
    f.instruction(&Instruction::LocalSet(l.gas));
    f.instruction(&Instruction::Block(block));
    for item in &items {
        match item {
            Item::Op(ins) => {
                f.instruction(ins);
            }
            Item::Charge(n) => {
                if let Some(cost) = cost_of(*n) {
                    emit_debit(&mut f, globals.gas, l.gas, &[Instruction::I64Const(cost)]);
                }
            }
            Item::LoopEntry(n) | Item::Header(n) => {
                let Some(lc) = loops.get(*n) else { continue };
                // At the entry when paid at the edges, else at the header.
                if lc.at_edges == matches!(item, Item::LoopEntry(_))
                    && let Some(cost) = cost_of(lc.header)
                {
                    emit_debit(&mut f, globals.gas, l.gas, &[Instruction::I64Const(cost)]);
                }
            }
            Item::BackEdge { n, depth } => {
                let paid_here = loops
                    .get(*n)
                    .filter(|lc| lc.at_edges)
                    .and_then(|lc| cost_of(lc.header));
                match paid_here {
                    Some(cost) => {
                        // gas -= cost; if gas >= 0 { br } else { trap }.
                        // The counter never exceeds i64::MAX and costs are
                        // far below it, so the subtraction cannot wrap.
                        f.instruction(&Instruction::LocalGet(l.gas));
                        f.instruction(&Instruction::I64Const(cost));
                        f.instruction(&Instruction::I64Sub);
                        f.instruction(&Instruction::LocalTee(l.gas));
                        f.instruction(&Instruction::I64Const(0));
                        f.instruction(&Instruction::I64GeS);
                        f.instruction(&Instruction::BrIf(*depth));
                        f.instruction(&Instruction::I64Const(-1));
                        f.instruction(&Instruction::GlobalSet(globals.gas));
                        f.instruction(&Instruction::Unreachable);
                    }
                    None => {
                        f.instruction(&Instruction::Br(*depth));
                    }
                }
            }
            Item::ChargePerUnit(per_unit) => {
                f.instruction(&Instruction::LocalTee(l.scratch));
                // At most 2^32 units of at most ~2^18 fuel (`memory.grow`
                // under V4: 255 + 30 000 gas x 8 per page): no overflow.
                let amount = [
                    Instruction::LocalGet(l.scratch),
                    Instruction::I64ExtendI32U,
                    Instruction::I64Const(*per_unit as i64),
                    Instruction::I64Mul,
                ];
                emit_debit(&mut f, globals.gas, l.gas, &amount);
            }
            Item::Sync => {
                f.instruction(&Instruction::LocalGet(l.gas));
                f.instruction(&Instruction::GlobalSet(globals.gas));
            }
            Item::Reload => {
                f.instruction(&Instruction::GlobalGet(globals.gas));
                f.instruction(&Instruction::LocalSet(l.gas));
            }
            Item::Opaque => {
                f.instruction(&Instruction::LocalGet(l.gas));
                f.instruction(&Instruction::GlobalGet(globals.zero));
                f.instruction(&Instruction::I64Xor);
                f.instruction(&Instruction::LocalSet(l.gas));
            }
        }
    }
    // Every exit passes here: the caller (or the VM) reads what is left.
    f.instruction(&Instruction::LocalGet(l.gas));
    f.instruction(&Instruction::GlobalSet(globals.gas));
    // Callees restore the height they found: what is left is ours.
    f.instruction(&Instruction::LocalGet(l.height));
    f.instruction(&Instruction::I32Const(frame.stack_cost as i32));
    f.instruction(&Instruction::I32Sub);
    f.instruction(&Instruction::GlobalSet(globals.height));
    f.instruction(&Instruction::End);
    Ok(f)
}

/// `gas -= amount` (`amount` pushes a non-negative i64); when that would go
/// below zero, -1 is stored to the global (so the VM can tell out of gas
/// from the contract's own `unreachable`; a constant keeps the old counter
/// out of the trap path) and the instance traps. Comparing before subtracting lets the compiler test the live
/// counter in place instead of copying it every iteration of a loop.
fn emit_debit(f: &mut Function, global: u32, local: u32, amount: &[Instruction<'_>]) {
    let push_amount = |f: &mut Function| {
        for ins in amount {
            f.instruction(ins);
        }
    };
    f.instruction(&Instruction::LocalGet(local));
    push_amount(f);
    f.instruction(&Instruction::I64LtS);
    f.instruction(&Instruction::If(BlockType::Empty));
    f.instruction(&Instruction::I64Const(-1));
    f.instruction(&Instruction::GlobalSet(global));
    f.instruction(&Instruction::Unreachable);
    f.instruction(&Instruction::End);
    f.instruction(&Instruction::LocalGet(local));
    push_amount(f);
    f.instruction(&Instruction::I64Sub);
    f.instruction(&Instruction::LocalSet(local));
}

fn emit_stack_prologue(f: &mut Function, global: u32, local: u32, frame: &FrameInfo) {
    // Costs and the limit are far below 2^31, so the i32 arithmetic is exact
    // and the unsigned comparison cannot wrap.
    f.instruction(&Instruction::GlobalGet(global));
    f.instruction(&Instruction::I32Const(frame.stack_cost as i32));
    f.instruction(&Instruction::I32Add);
    f.instruction(&Instruction::LocalTee(local));
    f.instruction(&Instruction::GlobalSet(global));
    f.instruction(&Instruction::LocalGet(local));
    f.instruction(&Instruction::I32Const(frame.stack_height_max as i32));
    f.instruction(&Instruction::I32GtU);
    f.instruction(&Instruction::If(BlockType::Empty));
    f.instruction(&Instruction::Unreachable);
    f.instruction(&Instruction::End);
}

fn wasm_err(e: wasmparser::BinaryReaderError) -> ValidationError {
    ValidationError::InvalidWasm {
        offset: e.offset(),
        message: e.message().to_string(),
    }
}

fn encode_err<E: std::fmt::Debug>(e: wasm_encoder::reencode::Error<E>) -> ValidationError {
    ValidationError::InvalidWasm {
        offset: 0,
        message: format!("cannot re-encode: {e:?}"),
    }
}

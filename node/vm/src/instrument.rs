//! Deploy-time instrumentation for a deterministic stack limit.
//!
//! The native stack a Wasm call uses depends on the compiler, its version
//! and the host, so a native stack overflow is not a deterministic event.
//! Instead every defined function is rewritten to count a "stack height" in
//! a new mutable global (in the spirit of wasm-instrument's stack limiter):
//!
//! ```text
//! prologue:  height += cost; if height > LIMIT { unreachable }
//!            block (result <function's result>)
//!              <original body, with `return` turned into a branch to this block>
//!            end
//! epilogue:  height -= cost
//! ```
//!
//! `cost` is the function's parameters + locals + maximum operand-stack
//! height (from the validator) + a fixed frame overhead, so it bounds the
//! frame's real size. A branch to the function's outermost label lands after
//! the wrapper block exactly as it landed at the function's end before, so
//! every exit runs the epilogue; traps abandon the instance, which is never
//! reused. The global is exported as `__stele_stack_height` so the runtime
//! can tell a stack-limit trap from the contract's own `unreachable`.
//!
//! Function, global and type indices are unchanged (the global is appended
//! last and contracts cannot import globals), so no other section needs
//! rewriting.

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, ExportKind, ExportSection, Function, GlobalSection,
    GlobalType, Instruction, Module, RawSection, ValType,
};
use wasmparser::{Operator, Parser, Payload};

use crate::abi;
use crate::validate::{ModuleInfo, ValidationError, features};

/// Rewrites validated `code` with the stack-height counter. `info` must come
/// from validating the same `code`.
pub fn instrument(
    code: &[u8],
    info: &ModuleInfo,
    stack_height_max: u32,
) -> Result<Vec<u8>, ValidationError> {
    let mut module = Module::new();
    let mut re = RoundtripReencoder;
    let height_global = info.globals;
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
                push_height_global(&mut section);
                module.section(&section);
                globals_done = true;
            }
            Payload::ExportSection(s) => {
                if !globals_done {
                    let mut section = GlobalSection::new();
                    push_height_global(&mut section);
                    module.section(&section);
                    globals_done = true;
                }
                let mut section = ExportSection::new();
                re.parse_export_section(&mut section, s)
                    .map_err(encode_err)?;
                section.export(abi::STACK_HEIGHT_EXPORT, ExportKind::Global, height_global);
                module.section(&section);
            }
            Payload::CodeSectionStart { .. } => code_section = Some(CodeSection::new()),
            Payload::CodeSectionEntry(body) => {
                let cost = info
                    .function_costs
                    .get(defined)
                    .copied()
                    // Unreachable for validated code; a missing cost traps on entry.
                    .unwrap_or(stack_height_max + 1);
                let result = info.function_results.get(defined).copied().flatten();
                defined += 1;
                let mut locals = Vec::new();
                let mut reader = body.get_locals_reader().map_err(wasm_err)?;
                for _ in 0..reader.get_count() {
                    let (n, t) = reader.read().map_err(wasm_err)?;
                    locals.push((n, re.val_type(t).map_err(encode_err)?));
                }
                let mut f = Function::new(locals);
                let block = match result {
                    None => BlockType::Empty,
                    Some(t) => BlockType::Result(re.val_type(t).map_err(encode_err)?),
                };
                emit_prologue(&mut f, height_global, cost, stack_height_max);
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
                emit_epilogue(&mut f, height_global, cost);
                f.instruction(&Instruction::End);
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

fn push_height_global(section: &mut GlobalSection) {
    section.global(
        GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i32_const(0),
    );
}

fn emit_prologue(f: &mut Function, global: u32, cost: u32, limit: u32) {
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

fn emit_epilogue(f: &mut Function, global: u32, cost: u32) {
    f.instruction(&Instruction::GlobalGet(global));
    f.instruction(&Instruction::I32Const(cost as i32));
    f.instruction(&Instruction::I32Sub);
    f.instruction(&Instruction::GlobalSet(global));
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

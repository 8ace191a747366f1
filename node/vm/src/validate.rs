//! Deploy-time validation: everything a contract's code must satisfy before
//! it is stored, with one specific error per rule. Also gathers what the
//! instrumentation and the runtime need to know about the module.

use thiserror::Error;
use wasmparser::{
    ConstExpr, DataKind, ElementItems, ElementKind, ExternalKind, FuncType,
    FuncValidatorAllocations, Operator, Parser, Payload, TypeRef, ValType, ValidPayload, Validator,
    WasmFeatures,
};

use crate::abi::{self, Ty};
use crate::limits::{PAGE_BYTES, VmLimits};

/// Stack-height units charged per call frame on top of its locals and
/// operand stack (return address, frame pointer, saved registers).
pub const FRAME_OVERHEAD_UNITS: u32 = 8;

/// Why code was rejected at deploy. Messages are deterministic: they contain
/// only values derived from the code and the limits.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    #[error("code is {len} bytes, over the maximum of {max}")]
    CodeTooLarge { len: usize, max: usize },
    #[error("invalid wasm at offset {offset}: {message}")]
    InvalidWasm { offset: usize, message: String },
    #[error("import {module}::{name} is outside the host module `stele`")]
    ImportOutsideHostModule { module: String, name: String },
    #[error("unknown host function stele::{name}")]
    UnknownHostFunction { name: String },
    #[error("host function stele::{name} imported with the wrong signature")]
    HostFunctionSignature { name: String },
    #[error("import stele::{name} is not a function; only functions may be imported")]
    NonFunctionImport { name: String },
    #[error("missing required export `{0}`")]
    MissingExport(&'static str),
    #[error("export `{0}` uses a name reserved for the VM")]
    ReservedExport(String),
    #[error("export `memory` is not a memory")]
    MemoryExportKind,
    #[error("memory {what} of {pages} pages is over the maximum of {max}")]
    MemoryTooLarge {
        what: &'static str,
        pages: u64,
        max: u64,
    },
    #[error("table {what} of {elements} elements is over the maximum of {max}")]
    TableTooLarge {
        what: &'static str,
        elements: u64,
        max: u64,
    },
    #[error("{what}: {count} is over the maximum of {max}")]
    TooMany {
        what: &'static str,
        count: u64,
        max: u64,
    },
    #[error("start functions are not allowed")]
    StartFunction,
    #[error("active {what} segment {index} ends at {end}, past the initial {what} size {size}")]
    SegmentOutOfBounds {
        what: &'static str,
        index: u32,
        end: u64,
        size: u64,
    },
    #[error("active {what} segment {index} has an offset that is not a constant")]
    SegmentOffset { what: &'static str, index: u32 },
}

impl ValidationError {
    fn wasm(e: wasmparser::BinaryReaderError) -> Self {
        ValidationError::InvalidWasm {
            offset: e.offset(),
            message: e.message().to_string(),
        }
    }
}

/// What validation learned about a module.
#[derive(Debug, Clone, Default)]
pub struct ModuleInfo {
    /// Number of imported functions (all host functions).
    pub imported_functions: u32,
    /// Stack-height cost of each defined function, in definition order.
    pub function_costs: Vec<u32>,
    /// Number of results of each defined function (0 or 1).
    pub function_results: Vec<Option<ValType>>,
    /// Parameters plus declared locals of each defined function: the index
    /// of the first local the instrumentation may add.
    pub function_locals: Vec<u32>,
    /// Number of globals defined by the module (no global imports exist).
    pub globals: u32,
    /// Exported functions of type `() -> ()`: the callable methods.
    pub methods: Vec<String>,
    /// Whether the module opted in to re-entry.
    pub reentrant: bool,
    /// Initial pages of linear memory.
    pub initial_pages: u64,
    /// Total bytes in data segments.
    pub data_bytes: u64,
    /// Compile complexity of the whole module: the sum over its functions
    /// of [`compile_complexity`]. Bounded by
    /// `VmLimits::function_complexity_max` per function and
    /// `module_complexity_max` in all.
    pub complexity: u64,
    /// The largest compile complexity of one of its functions.
    pub function_complexity: u64,
}

/// The Wasm feature set contracts may use: the "lime1" set (Wasm 1.0 plus
/// multi-value, sign extension, saturating float-to-int, `memory.copy` /
/// `memory.fill`, extended constants and the overlong `call_indirect`
/// encoding). No SIMD, threads, reference types, GC, exceptions, tail
/// calls, multi-memory or memory64.
pub fn features() -> WasmFeatures {
    WasmFeatures::LIME1
}

fn too_many(what: &'static str, count: impl Into<u64>, max: impl Into<u64>) -> ValidationError {
    ValidationError::TooMany {
        what,
        count: count.into(),
        max: max.into(),
    }
}

fn check_count(what: &'static str, count: u32, max: u32) -> Result<(), ValidationError> {
    if count > max {
        Err(too_many(what, count, max))
    } else {
        Ok(())
    }
}

fn to_ty(v: &ValType) -> Option<Ty> {
    match v {
        ValType::I32 => Some(Ty::I32),
        ValType::I64 => Some(Ty::I64),
        _ => None,
    }
}

/// Compile complexity every function adds whatever its body (Cranelift's
/// fixed cost per function: 10 000 tiny functions take ~0.6 s).
pub const FUNCTION_BASE_COMPLEXITY: u64 = 256;

/// Control flow points one call counts for: values live across a call are
/// spilled and reloaded, about an eighth of the work a branch point costs
/// the compiler (docs/benchmarks.md, adversarial benchmark).
pub const CALLS_PER_CONTROL_POINT: u64 = 8;

/// A function's compile complexity: the values it can keep live times its
/// control flow points (a call counting for 1/8), plus a fixed part.
/// Cranelift's time and memory grow with this, not with code size (the
/// adversarial benchmark measured ~0.2 µs per unit on the reference
/// machine, and straight-line code is cheap at any size).
pub fn compile_complexity(values: u64, control_points: u64, calls: u64) -> u64 {
    let points = control_points
        .saturating_mul(CALLS_PER_CONTROL_POINT)
        .saturating_add(calls);
    values
        .saturating_mul(points)
        .div_ceil(CALLS_PER_CONTROL_POINT)
        .saturating_add(FUNCTION_BASE_COMPLEXITY)
}

/// An active segment to check against the initial size of its memory or
/// table once the whole module is known to be valid.
struct ActiveSegment {
    what: &'static str,
    index: u32,
    /// The offset, if the expression is a constant this check can evaluate.
    offset: Option<u32>,
    /// Bytes (data) or elements (element segment).
    len: u64,
    /// The initial size of its memory in bytes, or of its table in
    /// elements (both sections come before the segments).
    size: u64,
}

/// The value of a segment's offset expression: `i32.const` combined with
/// the extended-constant `i32.add`, `i32.sub` and `i32.mul` (wrapping, as
/// Wasm evaluates them). Contracts cannot import globals, so no valid
/// offset expression reads one.
fn const_offset(expr: &ConstExpr<'_>) -> Option<u32> {
    let mut stack: Vec<i32> = Vec::new();
    for op in expr.get_operators_reader() {
        let binary = |stack: &mut Vec<i32>, f: fn(i32, i32) -> i32| {
            let b = stack.pop()?;
            let a = stack.pop()?;
            stack.push(f(a, b));
            Some(())
        };
        match op.ok()? {
            Operator::I32Const { value } => stack.push(value),
            Operator::I32Add => binary(&mut stack, i32::wrapping_add)?,
            Operator::I32Sub => binary(&mut stack, i32::wrapping_sub)?,
            Operator::I32Mul => binary(&mut stack, i32::wrapping_mul)?,
            Operator::End => break,
            _ => return None,
        }
    }
    match stack.as_slice() {
        [value] => Some(*value as u32),
        _ => None,
    }
}

/// Checks that every active segment fits the initial size of its memory
/// or table, so instantiation cannot fail on them.
fn check_segments(segments: &[ActiveSegment]) -> Result<(), ValidationError> {
    for s in segments {
        let Some(offset) = s.offset else {
            return Err(ValidationError::SegmentOffset {
                what: s.what,
                index: s.index,
            });
        };
        let end = u64::from(offset) + s.len;
        if end > s.size {
            return Err(ValidationError::SegmentOutOfBounds {
                what: s.what,
                index: s.index,
                end,
                size: s.size,
            });
        }
    }
    Ok(())
}

/// Validates `code` against `limits` and returns what the VM needs to know.
pub fn validate(code: &[u8], limits: &VmLimits) -> Result<ModuleInfo, ValidationError> {
    if code.len() > limits.code_bytes_max {
        return Err(ValidationError::CodeTooLarge {
            len: code.len(),
            max: limits.code_bytes_max,
        });
    }
    let mut info = ModuleInfo::default();
    // Every function type, and the type index of every defined function.
    let mut types: Vec<FuncType> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut has_memory_export = false;
    let mut allocs = FuncValidatorAllocations::default();
    let mut validator = Validator::new_with_features(features());
    let mut parser = Parser::new(0);
    parser.set_features(features());
    let mut defined_index = 0usize;
    let mut segments: Vec<ActiveSegment> = Vec::new();
    let mut table_elements: u64 = 0;

    for payload in parser.parse_all(code) {
        let payload = payload.map_err(ValidationError::wasm)?;
        match &payload {
            Payload::TypeSection(s) => {
                check_count("types", s.count(), limits.types_max)?;
                for rec in s.clone().into_iter_err_on_gc_types() {
                    let ft = rec.map_err(ValidationError::wasm)?;
                    check_count(
                        "function parameters",
                        ft.params().len() as u32,
                        limits.params_max,
                    )?;
                    check_count(
                        "function results",
                        ft.results().len() as u32,
                        limits.results_max,
                    )?;
                    types.push(ft);
                }
            }
            Payload::ImportSection(s) => {
                check_count("imports", s.count(), limits.imports_max)?;
                for import in s.clone().into_imports() {
                    let import = import.map_err(ValidationError::wasm)?;
                    if import.module != abi::HOST_MODULE {
                        return Err(ValidationError::ImportOutsideHostModule {
                            module: import.module.to_string(),
                            name: import.name.to_string(),
                        });
                    }
                    let TypeRef::Func(type_index) = import.ty else {
                        return Err(ValidationError::NonFunctionImport {
                            name: import.name.to_string(),
                        });
                    };
                    let Some((params, results)) = abi::host_function(import.name, limits) else {
                        return Err(ValidationError::UnknownHostFunction {
                            name: import.name.to_string(),
                        });
                    };
                    if !types
                        .get(type_index as usize)
                        .is_some_and(|ft| signature_matches(ft, params, results))
                    {
                        return Err(ValidationError::HostFunctionSignature {
                            name: import.name.to_string(),
                        });
                    }
                    info.imported_functions += 1;
                }
            }
            Payload::FunctionSection(s) => {
                check_count("functions", s.count(), limits.functions_max)?;
                for t in s.clone() {
                    func_types.push(t.map_err(ValidationError::wasm)?);
                }
            }
            Payload::TableSection(s) => {
                check_count("tables", s.count(), limits.tables_max)?;
                for t in s.clone() {
                    let t = t.map_err(ValidationError::wasm)?;
                    table_elements = t.ty.initial;
                    let max = limits.table_elements_max;
                    if t.ty.initial > max {
                        return Err(ValidationError::TableTooLarge {
                            what: "initial size",
                            elements: t.ty.initial,
                            max,
                        });
                    }
                    if let Some(m) = t.ty.maximum.filter(|m| *m > max) {
                        return Err(ValidationError::TableTooLarge {
                            what: "maximum size",
                            elements: m,
                            max,
                        });
                    }
                }
            }
            Payload::MemorySection(s) => {
                for m in s.clone() {
                    let m = m.map_err(ValidationError::wasm)?;
                    let max = limits.memory_pages_max;
                    if m.initial > max {
                        return Err(ValidationError::MemoryTooLarge {
                            what: "initial size",
                            pages: m.initial,
                            max,
                        });
                    }
                    if let Some(p) = m.maximum.filter(|p| *p > max) {
                        return Err(ValidationError::MemoryTooLarge {
                            what: "maximum size",
                            pages: p,
                            max,
                        });
                    }
                    info.initial_pages = m.initial;
                }
            }
            Payload::GlobalSection(s) => {
                check_count("globals", s.count(), limits.globals_max)?;
                info.globals = s.count();
            }
            Payload::ExportSection(s) => {
                check_count("exports", s.count(), limits.exports_max)?;
                for e in s.clone() {
                    let e = e.map_err(ValidationError::wasm)?;
                    if e.name.starts_with(abi::RESERVED_EXPORT_PREFIX) {
                        return Err(ValidationError::ReservedExport(e.name.to_string()));
                    }
                    if e.name == abi::MEMORY_EXPORT {
                        if e.kind != ExternalKind::Memory {
                            return Err(ValidationError::MemoryExportKind);
                        }
                        has_memory_export = true;
                    }
                    if e.kind == ExternalKind::Func {
                        let defined =
                            (e.index as usize).checked_sub(info.imported_functions as usize);
                        let ty = defined
                            .and_then(|d| func_types.get(d))
                            .and_then(|t| types.get(*t as usize));
                        if ty.is_some_and(|ft| ft.params().is_empty() && ft.results().is_empty()) {
                            info.methods.push(e.name.to_string());
                        }
                    }
                }
            }
            Payload::StartSection { .. } => return Err(ValidationError::StartFunction),
            Payload::ElementSection(s) => {
                check_count("element segments", s.count(), limits.element_segments_max)?;
                for (index, e) in (0u32..).zip(s.clone()) {
                    let e = e.map_err(ValidationError::wasm)?;
                    if let ElementKind::Active { offset_expr, .. } = &e.kind {
                        let len = match &e.items {
                            ElementItems::Functions(r) => r.count(),
                            ElementItems::Expressions(_, r) => r.count(),
                        };
                        segments.push(ActiveSegment {
                            what: "element",
                            index,
                            offset: const_offset(offset_expr),
                            len: u64::from(len),
                            size: table_elements,
                        });
                    }
                }
            }
            Payload::DataSection(s) => {
                check_count("data segments", s.count(), limits.data_segments_max)?;
                for (index, d) in (0u32..).zip(s.clone()) {
                    let d = d.map_err(ValidationError::wasm)?;
                    info.data_bytes += d.data.len() as u64;
                    if let DataKind::Active { offset_expr, .. } = &d.kind {
                        segments.push(ActiveSegment {
                            what: "data",
                            index,
                            offset: const_offset(offset_expr),
                            len: d.data.len() as u64,
                            size: info.initial_pages * PAGE_BYTES,
                        });
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let size = body.range().len();
                if size > limits.function_body_bytes_max as usize {
                    return Err(too_many(
                        "function body bytes",
                        size as u64,
                        limits.function_body_bytes_max,
                    ));
                }
                let mut locals: u64 = 0;
                let mut reader = body.get_locals_reader().map_err(ValidationError::wasm)?;
                for _ in 0..reader.get_count() {
                    let (n, _) = reader.read().map_err(ValidationError::wasm)?;
                    locals += u64::from(n);
                    if locals > u64::from(limits.locals_max) {
                        return Err(too_many("function locals", locals, limits.locals_max));
                    }
                }
                let (params, result) = func_types
                    .get(defined_index)
                    .and_then(|t| types.get(*t as usize))
                    .map(|ft| (ft.params().len() as u32, ft.results().first().copied()))
                    .unwrap_or((0, None));
                info.function_results.push(result);
                info.function_locals.push(params + locals as u32);
                // The operand-stack maximum is filled in below, when the
                // validator reaches this body.
                info.function_costs
                    .push(params + locals as u32 + FRAME_OVERHEAD_UNITS);
                defined_index += 1;
            }
            Payload::CustomSection(c) if c.name() == abi::REENTRANT_SECTION => {
                info.reentrant = true;
            }
            _ => {}
        }
        match validator.payload(&payload).map_err(ValidationError::wasm)? {
            ValidPayload::Func(to_validate, body) => {
                let index = (to_validate.index - info.imported_functions) as usize;
                let mut fv = to_validate.into_validator(std::mem::take(&mut allocs));
                let mut locals = body.get_locals_reader().map_err(ValidationError::wasm)?;
                for _ in 0..locals.get_count() {
                    let offset = locals.original_position();
                    let (n, t) = locals.read().map_err(ValidationError::wasm)?;
                    fv.define_locals(offset, n, t)
                        .map_err(ValidationError::wasm)?;
                }
                let mut ops = body.get_operators_reader().map_err(ValidationError::wasm)?;
                let mut max_height = 0u32;
                let mut control_points: u64 = 1;
                let mut calls: u64 = 0;
                while !ops.eof() {
                    let (op, offset) = ops.read_with_offset().map_err(ValidationError::wasm)?;
                    match &op {
                        Operator::BrTable { targets } => {
                            control_points += 1;
                            // The default target counts too.
                            let count = u64::from(targets.len()) + 1;
                            if count > u64::from(limits.br_table_targets_max) {
                                return Err(too_many(
                                    "br_table targets",
                                    count,
                                    limits.br_table_targets_max,
                                ));
                            }
                        }
                        Operator::Block { .. }
                        | Operator::Loop { .. }
                        | Operator::If { .. }
                        | Operator::Else
                        | Operator::BrIf { .. } => control_points += 1,
                        Operator::Call { .. } | Operator::CallIndirect { .. } => calls += 1,
                        _ => {}
                    }
                    fv.op(offset, &op).map_err(ValidationError::wasm)?;
                    max_height = max_height.max(fv.operand_stack_height());
                }
                ops.finish().map_err(ValidationError::wasm)?;
                let values = u64::from(info.function_locals.get(index).copied().unwrap_or(0))
                    + u64::from(max_height);
                let complexity = compile_complexity(values, control_points, calls);
                if complexity > limits.function_complexity_max {
                    return Err(too_many(
                        "function compile complexity",
                        complexity,
                        limits.function_complexity_max,
                    ));
                }
                info.complexity = info.complexity.saturating_add(complexity);
                info.function_complexity = info.function_complexity.max(complexity);
                if info.complexity > limits.module_complexity_max {
                    return Err(too_many(
                        "module compile complexity",
                        info.complexity,
                        limits.module_complexity_max,
                    ));
                }
                if let Some(cost) = info.function_costs.get_mut(index) {
                    *cost = cost.saturating_add(max_height);
                }
                allocs = fv.into_allocations();
            }
            ValidPayload::End(_) => break,
            _ => {}
        }
    }
    if !has_memory_export {
        return Err(ValidationError::MissingExport(abi::MEMORY_EXPORT));
    }
    if limits.segments_in_bounds {
        check_segments(&segments)?;
    }
    Ok(info)
}

/// Whether `ft` is exactly `params -> results`.
fn signature_matches(ft: &FuncType, params: &[Ty], results: &[Ty]) -> bool {
    ft.params()
        .iter()
        .map(to_ty)
        .eq(params.iter().map(|t| Some(*t)))
        && ft
            .results()
            .iter()
            .map(to_ty)
            .eq(results.iter().map(|t| Some(*t)))
}

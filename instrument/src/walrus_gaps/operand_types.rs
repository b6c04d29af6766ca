//! Operand types by instruction offset, from wasmparser's validator.
//!
//! walrus gives a tree of instructions but no operand types; the transform
//! needs, at each fork-path call and at each construct that contains one, the
//! types of the values on the operand stack. The validator knows them, so
//! preflight's one validation of the input records, per function body
//! (bodies are validated in parallel), for calls and block-like
//! instructions the stack height, the height of the innermost control frame
//! and the whole stack, and for every instruction whether the stack is
//! empty down to the innermost frame (a place where code can be cut). Offsets are absolute, as walrus keeps them in each instruction's
//! `InstrLocId`. It records nothing else and changes nothing.

use crate::analysis::reach::BodyFacts;
use wasmparser::{
    FuncToValidate, FunctionBody, Operator, ValType, ValidatorResources, WasmModuleResources,
};

/// What the validator knew just before a call or block-like instruction.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// Operand stack height, for the whole function.
    pub height: u32,
    /// Height below which the innermost control frame cannot pop.
    pub frame_height: u32,
    /// The whole operand stack, bottom first; `None` in unreachable code
    /// (walrus drops it, so the transform never asks about it).
    pub stack: Option<&'a [ValType]>,
}

/// One recorded call or block-like instruction.
#[derive(Debug, Clone, Copy)]
struct Entry {
    offset: u32,
    height: u32,
    frame_height: u32,
    /// Where its stack starts in [`OperandTypes::types`]; `u32::MAX` when
    /// unknown.
    stack: u32,
}

/// Facts per absolute instruction offset, for the functions recorded.
#[derive(Debug, Default)]
pub struct OperandTypes {
    /// Calls and block-like instructions, by increasing offset.
    entries: Vec<Entry>,
    /// Their stacks, one after another.
    types: Vec<ValType>,
    /// Offsets, increasing, of the instructions before which the stack is
    /// empty down to the innermost control frame.
    at_base: Vec<u32>,
}

impl OperandTypes {
    /// The facts before the call or block-like instruction at `offset`.
    pub fn at(&self, offset: u32) -> Option<At<'_>> {
        let i = self
            .entries
            .binary_search_by_key(&offset, |e| e.offset)
            .ok()?;
        let e = self.entries[i];
        let stack = (e.stack != u32::MAX).then(|| {
            let start = e.stack as usize;
            &self.types[start..start + e.height as usize]
        });
        Some(At {
            height: e.height,
            frame_height: e.frame_height,
            stack,
        })
    }

    /// Whether, before the instruction at `offset`, the operand stack is
    /// empty down to the innermost control frame. False when unknown.
    pub fn at_frame_base(&self, offset: u32) -> bool {
        self.at_base.binary_search(&offset).is_ok()
    }

    /// Joins the facts of function bodies given in code order.
    pub fn join(parts: Vec<OperandTypes>) -> OperandTypes {
        let mut out = OperandTypes {
            entries: Vec::with_capacity(parts.iter().map(|p| p.entries.len()).sum()),
            types: Vec::with_capacity(parts.iter().map(|p| p.types.len()).sum()),
            at_base: Vec::with_capacity(parts.iter().map(|p| p.at_base.len()).sum()),
        };
        for p in parts {
            let shift = out.types.len() as u32;
            out.entries.extend(p.entries.into_iter().map(|mut e| {
                if e.stack != u32::MAX {
                    e.stack += shift;
                }
                e
            }));
            out.types.extend(p.types);
            out.at_base.extend(p.at_base);
        }
        out
    }
}

/// Validates one function body; with `record`, returns its operand types
/// and what it contributes to the call graph.
pub fn validate_body(
    func: FuncToValidate<ValidatorResources>,
    body: &FunctionBody<'_>,
    record: bool,
) -> Result<(OperandTypes, BodyFacts), wasmparser::BinaryReaderError> {
    let mut facts = OperandTypes::default();
    let mut calls = BodyFacts::default();
    let mut v = func.into_validator(Default::default());
    let mut locals = body.get_locals_reader()?;
    for _ in 0..locals.get_count() {
        let offset = locals.original_position();
        let (count, ty) = locals.read()?;
        calls.may_refuse |= ty.is_reference_type();
        v.define_locals(offset, count, ty)?;
    }
    if record {
        calls.may_refuse |= func_type_has_ref(
            v.resources(),
            v.resources().type_index_of_function(v.index()),
        );
    }
    let mut nest = Nesting::default();
    let mut ops = body.get_operators_reader()?;
    while !ops.eof() {
        let offset = ops.original_position();
        let op = ops.read()?;
        if record {
            if nest.kept() {
                calls.note(&op);
            }
            if let Some(blockty) = nest.step(&op) {
                calls.may_refuse |= match blockty {
                    wasmparser::BlockType::Empty => false,
                    wasmparser::BlockType::Type(t) => t.is_reference_type(),
                    wasmparser::BlockType::FuncType(t) => func_type_has_ref(v.resources(), Some(t)),
                };
            }
            let height = v.operand_stack_height();
            let frame_height = v.get_control_frame(0).map(|f| f.height as u32).unwrap_or(0);
            if wants_stack(&op) {
                let start = facts.types.len();
                for depth in (0..height as usize).rev() {
                    match v.get_operand_type(depth) {
                        Some(Some(t)) => facts.types.push(t),
                        _ => break,
                    }
                }
                let known = facts.types.len() - start == height as usize;
                if is_call(&op) {
                    calls.may_refuse |= nest.in_handler()
                        || facts.types[start..].iter().any(|t| t.is_reference_type());
                }
                if !known {
                    facts.types.truncate(start);
                }
                facts.entries.push(Entry {
                    offset: offset as u32,
                    height,
                    frame_height,
                    stack: if known { start as u32 } else { u32::MAX },
                });
            }
            if height == frame_height {
                facts.at_base.push(offset as u32);
            }
        }
        v.op(offset, &op)?;
    }
    ops.finish()?;
    Ok((facts, calls))
}

/// The open control frames of a body, as walrus sees them: whether an
/// instruction is kept in walrus IR, and whether it is inside a legacy
/// handler (where a call may be refused, ABI 1 §8).
///
/// walrus drops the instructions that follow `br`, `br_table`, `return`,
/// `unreachable`, `throw`, `throw_ref` and `rethrow` up to the end of their
/// block (not those after a `return_call`, which the validator also calls
/// unreachable), and a block opened there is parsed into a sequence that
/// nothing refers to. The call graph walks only what walrus keeps, so the
/// raw analysis must skip the same instructions.
#[derive(Default)]
struct Nesting {
    frames: Vec<Frame>,
    /// Open frames that are legacy handlers.
    handlers: usize,
    /// The function's own frame is past an unconditional branch.
    body_dead: bool,
}

#[derive(Clone, Copy)]
struct Frame {
    /// Opened in dropped code, or inside such a frame.
    orphan: bool,
    /// Past an unconditional branch.
    dead: bool,
    handler: bool,
}

impl Nesting {
    /// Whether walrus keeps the next instruction.
    fn kept(&self) -> bool {
        match self.frames.last() {
            Some(f) => !f.orphan && !f.dead,
            None => !self.body_dead,
        }
    }

    fn in_handler(&self) -> bool {
        self.handlers > 0
    }

    /// Takes one instruction into account; returns the block type of a
    /// block it opens.
    fn step(&mut self, op: &Operator<'_>) -> Option<wasmparser::BlockType> {
        match op {
            Operator::Block { blockty }
            | Operator::Loop { blockty }
            | Operator::If { blockty }
            | Operator::Try { blockty }
            | Operator::TryTable {
                try_table: wasmparser::TryTable { ty: blockty, .. },
            } => {
                let orphan = !self.kept();
                self.frames.push(Frame {
                    orphan,
                    dead: false,
                    handler: false,
                });
                return Some(*blockty);
            }
            Operator::Else => {
                if let Some(f) = self.frames.last_mut() {
                    f.dead = false;
                }
            }
            Operator::Catch { .. } | Operator::CatchAll => {
                if let Some(f) = self.frames.last_mut() {
                    f.dead = false;
                    if !f.handler {
                        f.handler = true;
                        self.handlers += 1;
                    }
                }
            }
            Operator::End | Operator::Delegate { .. } => {
                if let Some(f) = self.frames.pop() {
                    self.handlers -= usize::from(f.handler);
                }
            }
            Operator::Br { .. }
            | Operator::BrTable { .. }
            | Operator::Return
            | Operator::Unreachable
            | Operator::Throw { .. }
            | Operator::ThrowRef
            | Operator::Rethrow { .. } => match self.frames.last_mut() {
                Some(f) => f.dead = true,
                None => self.body_dead = true,
            },
            _ => {}
        }
        None
    }
}

/// Whether the function type at `ty` has a reference-typed parameter or
/// result.
fn func_type_has_ref(r: &ValidatorResources, ty: Option<u32>) -> bool {
    ty.and_then(|t| r.sub_type_at(t))
        .and_then(|s| match &s.composite_type.inner {
            wasmparser::CompositeInnerType::Func(f) => Some(f),
            _ => None,
        })
        .is_some_and(|f| {
            f.params()
                .iter()
                .chain(f.results())
                .any(|t| t.is_reference_type())
        })
}

fn is_call(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::Call { .. }
            | Operator::CallIndirect { .. }
            | Operator::CallRef { .. }
            | Operator::ReturnCall { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::ReturnCallRef { .. }
    )
}

fn wants_stack(op: &Operator<'_>) -> bool {
    is_call(op)
        || matches!(
            op,
            Operator::Block { .. }
                | Operator::Loop { .. }
                | Operator::If { .. }
                | Operator::TryTable { .. }
                | Operator::Try { .. }
        )
}

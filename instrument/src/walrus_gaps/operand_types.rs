//! Operand types by instruction offset, from wasmparser's validator.
//!
//! walrus gives a tree of instructions but no operand types; the transform
//! needs, at each fork-path call and at each construct that contains one, the
//! types of the values on the operand stack. The validator knows them, so
//! this module re-validates the bodies of the functions that will be
//! rewritten and records, per instruction offset (walrus keeps the offset as
//! each instruction's `InstrLocId`), the stack height, the height of the
//! innermost control frame, and for calls and block-like instructions the
//! whole stack. It records nothing else and changes nothing.

use std::collections::{BTreeSet, HashMap};
use wasmparser::{Operator, Parser, ValType, Validator, WasmFeatures};

/// What the validator knew just before one instruction ran.
#[derive(Debug, Clone)]
pub struct At {
    /// Operand stack height, for the whole function.
    pub height: u32,
    /// Height below which the innermost control frame cannot pop.
    pub frame_height: u32,
    /// The whole operand stack, bottom first; only for calls and blocks.
    pub stack: Option<Vec<ValType>>,
}

/// Facts per absolute instruction offset, for the functions asked about.
#[derive(Debug, Default)]
pub struct OperandTypes {
    at: HashMap<u32, At>,
}

impl OperandTypes {
    /// The facts before the instruction at `offset`.
    pub fn at(&self, offset: u32) -> Option<&At> {
        self.at.get(&offset)
    }

    /// Validates `wasm` and records facts for the local functions whose
    /// position in the code section is in `wanted`.
    pub fn collect(
        wasm: &[u8],
        features: WasmFeatures,
        wanted: &BTreeSet<usize>,
    ) -> Result<OperandTypes, String> {
        let mut facts = OperandTypes::default();
        let mut validator = Validator::new_with_features(features);
        let mut code_index = 0usize;
        for payload in Parser::new(0).parse_all(wasm) {
            let payload = payload.map_err(|e| e.to_string())?;
            let valid = validator.payload(&payload).map_err(|e| e.to_string())?;
            if let wasmparser::ValidPayload::Func(func, body) = valid {
                let this = code_index;
                code_index += 1;
                if !wanted.contains(&this) {
                    continue;
                }
                let mut v = func.into_validator(Default::default());
                let mut locals = body.get_locals_reader().map_err(|e| e.to_string())?;
                for _ in 0..locals.get_count() {
                    let offset = locals.original_position();
                    let (count, ty) = locals.read().map_err(|e| e.to_string())?;
                    v.define_locals(offset, count, ty)
                        .map_err(|e| e.to_string())?;
                }
                let mut ops = body.get_operators_reader().map_err(|e| e.to_string())?;
                while !ops.eof() {
                    let offset = ops.original_position();
                    let op = ops.read().map_err(|e| e.to_string())?;
                    let height = v.operand_stack_height();
                    let frame_height = v.get_control_frame(0).map(|f| f.height as u32).unwrap_or(0);
                    let stack = if wants_stack(&op) {
                        let mut s = Vec::with_capacity(height as usize);
                        for depth in (0..height as usize).rev() {
                            match v.get_operand_type(depth) {
                                Some(Some(t)) => s.push(t),
                                // Unreachable code: walrus drops it, so the
                                // transform never asks about it.
                                _ => break,
                            }
                        }
                        (s.len() == height as usize).then_some(s)
                    } else {
                        None
                    };
                    facts.at.insert(
                        offset as u32,
                        At {
                            height,
                            frame_height,
                            stack,
                        },
                    );
                    v.op(offset, &op).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(facts)
    }
}

fn wants_stack(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::Call { .. }
            | Operator::CallIndirect { .. }
            | Operator::CallRef { .. }
            | Operator::ReturnCall { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::ReturnCallRef { .. }
            | Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. }
            | Operator::Try { .. }
    )
}

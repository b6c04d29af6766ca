//! Values as the comparison sees them (every NaN equal, references by
//! null-ness) and the arguments and import results the harness makes up.

use super::*;

/// A value as compared: floats by bits except that every NaN is equal;
/// references by null-ness only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cv {
    I32(i32),
    I64(i64),
    F32(Option<u32>),
    F64(Option<u64>),
    V128(u128),
    Ref { null: bool },
}

pub fn cv(v: &Val) -> Cv {
    match *v {
        Val::I32(x) => Cv::I32(x),
        Val::I64(x) => Cv::I64(x),
        Val::F32(b) => Cv::F32((!f32::from_bits(b).is_nan()).then_some(b)),
        Val::F64(b) => Cv::F64((!f64::from_bits(b).is_nan()).then_some(b)),
        Val::V128(x) => Cv::V128(x.as_u128()),
        Val::FuncRef(ref f) => Cv::Ref { null: f.is_none() },
        Val::ExternRef(ref r) => Cv::Ref { null: r.is_none() },
        Val::AnyRef(ref r) => Cv::Ref { null: r.is_none() },
        Val::ExnRef(ref r) => Cv::Ref { null: r.is_none() },
        Val::ContRef(ref r) => Cv::Ref { null: r.is_none() },
    }
}

pub fn cv_hash(v: &Cv) -> u64 {
    match *v {
        Cv::I32(x) => x as u32 as u64,
        Cv::I64(x) => x as u64,
        Cv::F32(b) => b.map_or(0x7fc0_0000, u64::from),
        Cv::F64(b) => b.unwrap_or(0x7ff8_0000_0000_0000),
        Cv::V128(x) => (x as u64) ^ ((x >> 64) as u64).rotate_left(17),
        Cv::Ref { null } => null as u64,
    }
}

/// A small, "interesting" value of type `ty` derived from `h`: mostly small
/// integers (good addresses, loop counts, table indices), sometimes wild.
pub fn make_val(ty: &ValType, h: u64) -> Val {
    let small = match h % 8 {
        0 => h as i64,
        1 => -1,
        _ => ((h >> 8) % 40) as i64 - 2,
    };
    match ty {
        ValType::I32 => Val::I32(small as i32),
        ValType::I64 => Val::I64(small),
        ValType::F32 => Val::F32((small as f32 / 4.0).to_bits()),
        ValType::F64 => Val::F64((small as f64 / 4.0).to_bits()),
        ValType::V128 => Val::V128((u128::from(h) << 64 | u128::from(mix64(h))).into()),
        ValType::Ref(r) => Val::null_ref(r.heap_type()),
    }
}

/// Arguments of call round `round` (0: zeros, 1: small constants).
pub fn args_for(ty: &FuncType, round: usize) -> Vec<Val> {
    const INTS: [i64; 6] = [1, 7, -1, 3, 16, 100];
    const FLOATS: [f64; 4] = [1.5, -2.0, 0.5, 1e10];
    ty.params()
        .enumerate()
        .map(|(j, t)| {
            if round == 0 {
                return Val::default_for_ty(&t).unwrap_or(Val::I32(0));
            }
            match t {
                ValType::I32 => Val::I32(INTS[j % 6] as i32),
                ValType::I64 => Val::I64(INTS[j % 6]),
                ValType::F32 => Val::F32((FLOATS[j % 4] as f32).to_bits()),
                ValType::F64 => Val::F64(FLOATS[j % 4].to_bits()),
                ValType::V128 => {
                    Val::V128((0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10u128 + j as u128).into())
                }
                ValType::Ref(r) => Val::null_ref(r.heap_type()),
            }
        })
        .collect()
}

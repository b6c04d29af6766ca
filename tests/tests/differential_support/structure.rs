//! What ABI §1 and §7 promise about an output, checked against the report.

use super::*;

/// What ABI §1 and §7 promise about an output, checked against the
/// report.
pub fn check_structure(
    input: &[u8],
    out: &[u8],
    report: &forkify_instrument::Report,
    config: &Config,
) -> Result<(), String> {
    if report.passed_through {
        return if out == input {
            Ok(())
        } else {
            Err("passed through but not byte-identical".into())
        };
    }
    let s = match abi::AbiSection::find(out) {
        Ok(Some(s)) => s,
        Ok(None) => return Err("output has no forkify.abi section".into()),
        Err(e) => return Err(format!("bad forkify.abi section: {e}")),
    };
    let want_imports: Vec<String> = config
        .sorted_fork_imports()
        .iter()
        .map(|i| i.to_string())
        .collect();
    let problems = [
        (
            s.version != abi::ABI_VERSION,
            format!("section version {}", s.version),
        ),
        (
            s.pointer_width != report.pointer_width,
            format!(
                "section pointer width {} vs report {}",
                s.pointer_width, report.pointer_width
            ),
        ),
        (
            s.flags & abi::FLAG_ABORT_ON_OVERFLOW == 0,
            "abort-on-overflow flag not set".into(),
        ),
        (
            u32::from(s.frame_header_size) != abi::FRAME_HEADER_SIZE,
            format!("frame header size {}", s.frame_header_size),
        ),
        (
            s.frames_offset != report.frames_offset,
            format!(
                "frames_offset {} vs report {}",
                s.frames_offset, report.frames_offset
            ),
        ),
        (
            s.frames_offset % 8 != 0 || s.frames_offset < 2 * u32::from(s.pointer_width),
            format!("frames_offset {}", s.frames_offset),
        ),
        (
            s.abort_reserve != report.abort_reserve,
            format!(
                "abort_reserve {} vs report {}",
                s.abort_reserve, report.abort_reserve
            ),
        ),
        (
            s.abort_reserve % 8 != 0 || s.abort_reserve < 16,
            format!("abort_reserve {}", s.abort_reserve),
        ),
        (
            s.max_frame_size != report.max_frame_size,
            format!(
                "max_frame_size {} vs report {}",
                s.max_frame_size, report.max_frame_size
            ),
        ),
        (
            s.max_frame_size % 8 != 0,
            format!("max_frame_size {} not a multiple of 8", s.max_frame_size),
        ),
        (
            s.instrumented_functions as usize != report.functions.len(),
            format!(
                "{} instrumented functions vs {} reported",
                s.instrumented_functions,
                report.functions.len()
            ),
        ),
        (
            s.info.fork_imports != want_imports,
            format!(
                "section fork imports {:?}, config {:?}",
                s.info.fork_imports, want_imports
            ),
        ),
    ];
    if let Some((_, p)) = problems.iter().find(|(bad, _)| *bad) {
        return Err(format!("section/report mismatch: {p}"));
    }
    for (i, f) in report.functions.iter().enumerate() {
        if f.ordinal as usize != i || (i > 0 && report.functions[i - 1].index >= f.index) {
            return Err(format!(
                "report.functions not in ordinal / ascending index order at {i}: {f:?}"
            ));
        }
        if f.frame_size % 8 != 0
            || f.frame_size < abi::FRAME_HEADER_SIZE
            || f.frame_size > s.max_frame_size
        {
            return Err(format!(
                "function {} frame size {} (max {})",
                f.name, f.frame_size, s.max_frame_size
            ));
        }
    }
    match forkify_instrument::instrument(out, config) {
        Err(Error::AlreadyInstrumented(_)) => {}
        Err(e) => {
            return Err(format!(
                "re-instrumenting the output: expected AlreadyInstrumented, got: {e}"
            ))
        }
        Ok(_) => return Err("the output was instrumented a second time".into()),
    }
    let instrumented: std::collections::BTreeSet<u32> =
        report.functions.iter().map(|f| f.index).collect();
    let after = forkify_testkit::wasm::function_bodies(out);
    let changed: Vec<_> = forkify_testkit::wasm::function_bodies(input)
        .into_iter()
        .filter(|(i, b)| !instrumented.contains(i) && after.get(i) != Some(b))
        .map(|(i, _)| i)
        .collect();
    if !changed.is_empty() {
        return Err(format!(
            "functions {changed:?} are not reported as instrumented but their bodies changed (ABI §1: they keep their exact bytes)"
        ));
    }
    Ok(())
}

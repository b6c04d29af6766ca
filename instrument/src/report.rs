//! Plain data about one run of the transform. It prints nothing.

use serde::Serialize;

/// What the transform did to one module.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// True when the module imports no fork import and was returned unchanged.
    pub passed_through: bool,
    /// 4 for wasm32, 8 for memory64 (0 when passed through without memory).
    pub pointer_width: u8,
    /// Size of the input in bytes.
    pub bytes_before: usize,
    /// Size of the output in bytes.
    pub bytes_after: usize,
    /// `frames_offset` of the section.
    pub frames_offset: u32,
    /// `abort_reserve` of the section.
    pub abort_reserve: u32,
    /// Largest frame.
    pub max_frame_size: u32,
    /// The fork imports the module really imports, as `module.name`.
    pub fork_imports_found: Vec<String>,
    /// Estimated bytes the rewrite added to the instrumented functions, by
    /// category (`dispatch`, `landing`, `unwind check`, `frame write`,
    /// `abort re-issue`, `restore`, `shell`); the runtime's own functions
    /// and walrus's re-encoding of the rewritten bodies are not included.
    pub added_bytes: std::collections::BTreeMap<String, u64>,
    /// One entry per instrumented function, in ordinal order.
    pub functions: Vec<FunctionReport>,
}

/// What was done to one function.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FunctionReport {
    /// Index in the function index space.
    pub index: u32,
    /// Name from the name section, or `func[index]`.
    pub name: String,
    /// `func_ordinal` in frames.
    pub ordinal: u32,
    /// Number of fork-path call sites.
    pub call_sites: u32,
    /// Locals declared before (parameters excluded).
    pub locals_before: u32,
    /// Locals the transform declared.
    pub locals_added: u32,
    /// Frame size in bytes.
    pub frame_size: u32,
    /// Estimated bytes the rewrite added to it, by category (see
    /// [`Report::added_bytes`]).
    pub added_bytes: std::collections::BTreeMap<String, u64>,
}

//! Analyses that only read the parsed module: which functions are on a
//! fork path and why (`callgraph`), which locals are live across each
//! fork-path call (`liveness`), and how functions are numbered and named
//! in messages (`index`), and before the parse, from the raw bytes, which
//! functions might be on a fork path at all (`reach`). Nothing here
//! changes the module.

pub mod callgraph;
pub mod index;
pub mod liveness;
pub mod reach;

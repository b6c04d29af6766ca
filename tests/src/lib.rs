//! The end-to-end test suites live in `tests/` (one binary per idea, with
//! `*_support/` modules for what several of them share); what the fuzz
//! target and the benchmarks share with them is the `forkify-testkit`
//! crate. This library is empty.

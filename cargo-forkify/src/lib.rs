//! cargo-forkify library.

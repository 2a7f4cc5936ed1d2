//! The integration tests, one binary (each file a module): the harness, its CLI and the
//! engines, built and linked once rather than once per file. `cargo test --test it run::`
//! runs one file's tests. allocations.rs (its own global allocator), contention.rs (it
//! times a busy neighbour), gate_e2e.rs (scripts/gate-under-load runs it) and mutations.rs
//! (its documented long trial) stay binaries of their own.

#[path = "../common/mod.rs"]
mod common;

mod errors;
mod export;
mod gate;
mod hub;
mod kernel_layouts;
mod layers;
mod llama_cpp;
mod models;
mod readme;
mod reference;
mod run;
mod serve;
mod tuned;

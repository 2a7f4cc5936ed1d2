//! Weights between a source and an engine: the plan (which type every tensor is stored in)
//! and the streaming of each tensor's bytes, made a batch of rows at a time, into an engine
//! or a GGUF file.

mod plan;
mod stream;

pub(crate) use plan::bytes_read_per_token;
pub use plan::{
    plan, plan_resolved, quant_plan, run_label, tensor_bytes, EngineInput, Planned, QuantPlan,
};
pub use stream::{TensorMaker, TensorStream, STREAM_CHUNKS};

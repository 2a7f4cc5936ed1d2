//! Time one generation through the library: load a model, generate, print the serving
//! metrics of the trace. `cargo run --release --example time_generation -- [MODEL] [ENGINE]`
//! (default: the SmolLM2 twin, random weights, on the tuned engine).

use llm_bench::engine::EngineChoice;
use llm_bench::generate::{generate, Request, Strategy};
use llm_bench::ModelSpec;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let spec = ModelSpec::parse(&args.next().unwrap_or("synthetic:smollm2-135m".into()))?;
    let engine: EngineChoice = args.next().unwrap_or("tuned".into()).parse()?;
    let mut model = llm_bench::model::plan(&spec, None)?.load_with(engine)?;
    let request = Request {
        prompt: "The capital of France is".into(),
        max_new_tokens: 16,
        min_new_tokens: 16,
        strategy: Strategy::Greedy,
        seed: 42,
        batch: 1,
    };
    let trace = generate(&mut model, &request, |_, _| {})?;
    println!(
        "{} ({:?} weights): TTFT {:.1} ms, E2E {:.1} ms, prefill {:.1} tokens/s, decode {:.1} tokens/s",
        model.label(),
        model.info.weights,
        trace.ttft_ms,
        trace.e2e_ms,
        trace.prefill_tokens_per_s(),
        trace.decode_tokens_per_s()
    );
    Ok(())
}

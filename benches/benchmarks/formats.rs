//! `formats`: the same 64-token greedy generation in f32, q8_0, q4_0 and the model's own
//! format, so the HTML report puts base and quantized side by side. Timed: the whole request;
//! each format is loaded (untimed) when its benchmark runs and freed after it.

use super::{group, Cost};
use criterion::{Criterion, Throughput};
use llm_bench::bench::{fixed_request, session, time_generate};
use llm_bench::engine::EngineChoice;
use llm_bench::generate::Strategy;
use llm_bench::model::{Model, Planned};

const NEW_TOKENS: usize = 64;
const COMPARED: &[&str] = &["f32", "q8_0", "q4_0"];

pub fn bench(c: &mut Criterion) {
    let mut plans: Vec<(String, EngineChoice, Planned)> = vec![];
    {
        let s = session();
        let formats: Vec<_> = COMPARED
            .iter()
            .map(|f| Some(f.parse().expect("listed formats parse")))
            .chain([None])
            .collect();
        for engine in s.engines() {
            for &format in &formats {
                let Some(planned) = s.plan_format(format) else {
                    continue;
                };
                let label = planned.label(engine);
                // An engine that cannot run this format is left out of this family (llama.cpp
                // runs every format, from a cached GGUF export).
                if engine.supports(&planned).is_ok() && !plans.iter().any(|(l, _, _)| *l == label) {
                    plans.push((label, engine, planned));
                }
            }
        }
    }
    let mut group = group(c, "formats", Cost::Large);
    group.throughput(Throughput::Elements(NEW_TOKENS as u64));
    let request = fixed_request(Strategy::Greedy, NEW_TOKENS);
    for (label, engine, planned) in plans {
        let mut planned = Some(planned);
        let mut model: Option<Model> = None;
        group.bench(&label, "greedy-64", |b| {
            if model.is_none() {
                let p = planned.take().expect("planned until loaded");
                match p.load_with(engine) {
                    Ok(m) => model = Some(m),
                    Err(e) => panic!("formats: loading {label} failed: {e}"),
                }
            }
            let model = model.as_mut().expect("loaded above");
            b.iter_custom(|iters| time_generate(model, &request, iters))
        });
    }
    group.finish();
}

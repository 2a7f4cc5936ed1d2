//! `formats`: the same 64-token greedy generation in f32, q8_0, q4_0 and the model's own
//! format, so the HTML report puts base and quantized side by side. Timed: the whole request;
//! each format is loaded (untimed) when its benchmark runs and freed after it.

use super::{group, Cost};
use criterion::{BenchmarkId, Criterion, Throughput};
use llm_bench::bench::{fixed_request, session, time_generate};
use llm_bench::generate::Strategy;
use llm_bench::model::Model;

const NEW_TOKENS: usize = 64;
const COMPARED: &[&str] = &["f32", "q8_0", "q4_0"];

pub fn bench(c: &mut Criterion) {
    let mut plans = vec![];
    {
        let s = session();
        let formats = COMPARED
            .iter()
            .map(|f| Some(f.parse().expect("listed formats parse")))
            .chain([None]);
        for format in formats {
            if let Some(planned) = s.plan_format(format) {
                if !plans
                    .iter()
                    .any(|p: &llm_bench::model::Planned| p.label() == planned.label())
                {
                    plans.push(planned);
                }
            }
        }
    }
    let mut group = group(c, "formats", Cost::Large);
    group.throughput(Throughput::Elements(NEW_TOKENS as u64));
    let request = fixed_request(Strategy::Greedy, NEW_TOKENS);
    for planned in plans {
        let id = BenchmarkId::new(planned.label(), "greedy-64");
        let mut planned = Some(planned);
        let mut model: Option<Model> = None;
        group.bench_function(id, |b| {
            if model.is_none() {
                let p = planned.take().expect("planned until loaded");
                let label = p.label();
                match p.load() {
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

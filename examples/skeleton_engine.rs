//! The smallest engine the harness can time: it implements `Engine` and returns uniform
//! logits, so the generation loop, the clock and the statistics run without a model. A new
//! engine starts from this shape, then gets an entry in `ENGINES` (see docs/engines.md).
//! `cargo run --example skeleton_engine`

use llm_bench::engine::{Engine, EngineInfo, Logits};

struct Uniform {
    vocab: usize,
    position: usize,
    batch: usize,
    logits: Logits,
}

impl Uniform {
    fn step(&mut self, batch: usize, tokens: usize) -> &Logits {
        self.position += tokens;
        self.batch = batch;
        // Keep the buffer between steps: a decode step should allocate nothing.
        self.logits.vocab = self.vocab;
        self.logits.data.resize(batch * self.vocab, 0.0);
        &self.logits
    }
}

impl Engine for Uniform {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "uniform".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            detail: "example".into(),
        }
    }
    fn prefill(&mut self, prompts: &[Vec<u32>]) -> llm_bench::Result<&Logits> {
        self.position = 0;
        let len = prompts.first().map_or(0, Vec::len);
        Ok(self.step(prompts.len(), len))
    }
    fn decode(&mut self, tokens: &[u32]) -> llm_bench::Result<&Logits> {
        Ok(self.step(tokens.len(), 1))
    }
    fn reset(&mut self) {
        self.position = 0;
        self.batch = 0;
    }
    fn position(&self) -> usize {
        self.position
    }
    fn batch_size(&self) -> usize {
        self.batch
    }
}

fn main() -> llm_bench::Result<()> {
    let mut engine = Uniform {
        vocab: 8,
        position: 0,
        batch: 0,
        logits: Logits::default(),
    };
    let started = std::time::Instant::now();
    let logits = engine.prefill(&[vec![1, 2, 3]])?;
    assert_eq!(logits.row(0).len(), 8);
    for token in 0..4 {
        engine.decode(&[token])?;
    }
    println!(
        "{}: {} positions in {:?}",
        engine.info().name,
        engine.position(),
        started.elapsed()
    );
    Ok(())
}

//! The inference engine behind every benchmark: one small trait, so that a second, tuned
//! engine can sit beside candle-transformers' for the same weights and every benchmark runs
//! either. Engines hold the weights and the KV cache; everything else (tokenizing, sampling,
//! timing) lives outside them.

pub mod quantize;

use crate::error::{Error, Result};
use candle_core::{Device, Tensor};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// candle-transformers' full-precision model (f32, bf16, f16).
    CandleDense,
    /// candle-transformers' quantized model (GGML block types).
    CandleQuantized,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::CandleDense => "candle-dense",
            EngineKind::CandleQuantized => "candle-quantized",
        }
    }
}

pub trait Engine: Send {
    fn kind(&self) -> EngineKind;

    /// Feeds `input` (`[batch, seq]` u32 token ids) after what the KV cache already holds and
    /// returns the logits of the last position as `[batch, vocab]` f32.
    fn forward(&mut self, input: &Tensor) -> Result<Tensor>;

    /// Empties the KV cache.
    fn reset(&mut self);

    /// How many positions the KV cache holds.
    fn position(&self) -> usize;

    /// How many sequences the KV cache holds (0 when empty).
    fn batch_size(&self) -> usize;

    /// Runs the prompts (one per sequence, all of one length) from an empty cache.
    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Tensor> {
        self.reset();
        let input = batch_tensor(prompts)?;
        self.forward(&input)
    }

    /// One decode step: one new token per sequence.
    fn decode(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(1)?;
        self.forward(&input)
    }
}

fn batch_tensor(prompts: &[Vec<u32>]) -> Result<Tensor> {
    let len = prompts.first().map(Vec::len).unwrap_or(0);
    if len == 0 {
        return Err(Error::EmptyPrompt);
    }
    if let Some(other) = prompts.iter().find(|p| p.len() != len) {
        return Err(Error::InvalidSetting {
            name: "batch",
            reason: format!(
                "the prompts of one batch must have the same number of tokens ({len} vs {}); the harness batches copies of one prompt",
                other.len()
            ),
        });
    }
    let flat: Vec<u32> = prompts.iter().flatten().copied().collect();
    Ok(Tensor::from_vec(flat, (prompts.len(), len), &Device::Cpu)?)
}

//! Requantizes a GGUF file with llama.cpp's own quantizer (`llama_model_quantize`), as
//! `llama-quantize --allow-requantize` does, without building llama.cpp's tools: the files
//! `scripts/kquant-table` measures are made this way.
//!
//!     cargo run --release --features llama-cpp --example llama_quantize -- IN.gguf OUT.gguf Q5_K_M

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, kind] = args.as_slice() else {
        let kinds: Vec<&str> = llm_bench::engine::llama_cpp::QUANTIZE_TYPES
            .iter()
            .map(|(name, _)| *name)
            .collect();
        eprintln!(
            "usage: llama_quantize IN.gguf OUT.gguf TYPE (TYPE: {})",
            kinds.join(", ")
        );
        return ExitCode::from(2);
    };
    let (input, output) = (PathBuf::from(input), PathBuf::from(output));
    if !input.is_file() {
        eprintln!("llama_quantize: {} does not exist", input.display());
        return ExitCode::from(2);
    }
    match llm_bench::engine::llama_cpp::quantize(&input, &output, kind) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llama_quantize: {e}");
            ExitCode::from(2)
        }
    }
}

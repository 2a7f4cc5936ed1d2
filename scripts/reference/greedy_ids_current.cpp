// Reference greedy decoding with llama.cpp's current API (llama_batch_get_one, llama_decode),
// printing token ids as one JSON object. greedy_ids.cpp is the same program for the older
// llama.cpp fork in llama-cpp-python 0.3.36 (its batch API has since been reverted).
// Used to make fixtures/reference/smollm2-greedy-vendored.json; see make-vendored-fixtures.
// Usage: greedy_ids_current MODEL.gguf N_PREDICT PROMPT
// Unlike greedy_ids.cpp it does not stop at end-of-generation: the harness compares fixed
// lengths with end-of-sequence ignored.
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char ** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL.gguf N_PREDICT PROMPT\n", argv[0]);
        return 2;
    }
    const std::string prompt = argv[3];
    const int n_predict = std::atoi(argv[2]);
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_prompt = -llama_tokenize(vocab, prompt.c_str(), prompt.size(), NULL, 0, true, true);
    std::vector<llama_token> prompt_tokens(n_prompt);
    llama_tokenize(vocab, prompt.c_str(), prompt.size(), prompt_tokens.data(), n_prompt, true, true);

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_prompt + n_predict + 1;
    cp.n_batch = n_prompt;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    llama_context * ctx = llama_init_from_model(model, cp);
    llama_sampler * smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(smpl, llama_sampler_init_greedy());

    llama_batch batch = llama_batch_get_one(prompt_tokens.data(), n_prompt);
    std::vector<llama_token> out;
    llama_token id = 0;
    while ((int) out.size() < n_predict) {
        if (llama_decode(ctx, batch)) { fprintf(stderr, "decode failed\n"); return 1; }
        id = llama_sampler_sample(smpl, ctx, -1);
        out.push_back(id);
        batch = llama_batch_get_one(&id, 1);
    }
    printf("{\"prompt_tokens\": [");
    for (int i = 0; i < n_prompt; ++i) printf("%s%d", i ? ", " : "", prompt_tokens[i]);
    printf("], \"output_tokens\": [");
    for (size_t i = 0; i < out.size(); ++i) printf("%s%d", i ? ", " : "", out[i]);
    printf("]}\n");
    llama_sampler_free(smpl);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

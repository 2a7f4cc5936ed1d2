// Reference greedy decoding with llama.cpp, printing token ids as one JSON object.
// Used once to make fixtures/reference/*.json; see make-fixtures.py for how it is built.
// Usage: greedy_ids MODEL.gguf N_PREDICT PROMPT
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static void set_tokens(llama_batch_ext * batch, const llama_token * tokens, int32_t n, llama_pos pos0) {
    llama_batch_ext_clear(batch);
    for (int32_t i = 0; i < n; ++i) {
        const int32_t idx = llama_batch_ext_add_token(batch, 0, tokens[i]);
        const llama_pos pos = pos0 + i;
        llama_batch_ext_set_pos(batch, idx, &pos);
    }
    llama_batch_ext_set_output_logits(batch, n - 1, true);
}

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
    cp.n_ctx = n_prompt + n_predict;
    cp.n_batch = n_prompt;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    llama_context * ctx = llama_init_from_model(model, cp);
    llama_sampler * smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(smpl, llama_sampler_init_greedy());

    llama_batch_ext * batch = llama_batch_ext_init(ctx);
    set_tokens(batch, prompt_tokens.data(), n_prompt, 0);
    std::vector<llama_token> out;
    int n_pos = 0, n_tokens = n_prompt;
    while ((int) out.size() < n_predict) {
        if (llama_process(ctx, LLAMA_PROCESS_TYPE_DECODE, batch)) { fprintf(stderr, "decode failed\n"); return 1; }
        n_pos += n_tokens;
        llama_token id = llama_sampler_sample(smpl, ctx, -1);
        out.push_back(id);
        if (llama_vocab_is_eog(vocab, id)) break;
        set_tokens(batch, &id, 1, n_pos);
        n_tokens = 1;
    }
    printf("{\"prompt_tokens\": [");
    for (int i = 0; i < n_prompt; ++i) printf("%s%d", i ? ", " : "", prompt_tokens[i]);
    printf("], \"output_tokens\": [");
    for (size_t i = 0; i < out.size(); ++i) printf("%s%d", i ? ", " : "", out[i]);
    printf("]}\n");
    llama_batch_ext_free(batch);
    llama_sampler_free(smpl);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

# Included after each project() of the llama.cpp build that the llama-cpp-sys-2 crate runs
# (CMAKE_PROJECT_INCLUDE, set in .cargo/config.toml; the crate's build script passes CMAKE_*
# variables to CMake). llama-cpp-2 asks for llama-cpp-sys-2's default features, which build
# llama.cpp's `common` library (the tools' argument parsing, downloads, Jinja templates) as
# well: llm-bench calls only libllama and ggml, and `common` was 45% of the llama.cpp build.
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llm-bench does not use llama.cpp's common library" FORCE)

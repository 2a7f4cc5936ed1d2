# Builds llama.cpp's llama-bench against the llama.cpp sources the llama-cpp-sys-2 crate vendors
# (the library llm-bench's llama-cpp engine links), with the options that crate's build.rs uses
# under `-C target-cpu=native` and the `openmp` feature. The crate ships llama.cpp without its
# tools, so tools/llama-bench comes from LLAMA_BENCH_SRC (see scripts/llama-bench-overhead).
cmake_minimum_required(VERSION 3.14)
project(llama-bench-vendored C CXX)
set(LLAMA_BUILD_TESTS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_EXAMPLES OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_SERVER OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TOOLS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_APP OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_COMMON ON CACHE BOOL "" FORCE)
set(LLAMA_CURL OFF CACHE BOOL "" FORCE)
set(GGML_NATIVE ON CACHE BOOL "" FORCE)
set(GGML_OPENMP ON CACHE BOOL "" FORCE)
set(BUILD_SHARED_LIBS OFF CACHE BOOL "" FORCE)
add_subdirectory(${LLAMA_VENDORED} llama.cpp)
add_executable(llama-bench ${LLAMA_BENCH_SRC}/llama-bench.cpp ${LLAMA_BENCH_SRC}/main.cpp)
target_include_directories(llama-bench PRIVATE ${LLAMA_BENCH_SRC})
target_link_libraries(llama-bench PRIVATE llama-common llama ${CMAKE_THREAD_LIBS_INIT})
target_compile_features(llama-bench PRIVATE cxx_std_17)

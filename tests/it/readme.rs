//! Every command line README.md and docs/ show is run: here (as written, from a scratch
//! folder), by a named test, or by a CI script. A documented command that none of them covers
//! fails this test, so it cannot silently break (as `cargo bench -- --quick` once did).

use crate::common;

use std::path::Path;
use std::process::Command;

const README: &str = include_str!("../../README.md");

/// README.md and every Markdown file under docs/, as (path, text).
fn documents() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.strip_prefix(root).unwrap().display().to_string(), text)
        })
        .collect()
}

/// Where each README command (matched by its start) is exercised. `test:FILE::NAME` must be a
/// test function in FILE; `script:PATH` must be a script that runs the command; `file:PATH`
/// is a file the README names rather than a command it shows; `here` is
/// run by `the_quick_start_commands_run_as_written` below.
const COVERAGE: &[(&str, &str)] = &[
    // Before `scripts/test`, which it starts like.
    ("scripts/test-aarch64", "script:scripts/test"),
    ("scripts/lint-wrapper-check", "script:scripts/test"),
    ("scripts/test", "script:.ci/run"),
    ("scripts/fetch-model", "script:scripts/test"),
    ("scripts/install-openai-client", "script:scripts/test"),
    ("cargo bench -- --quick", "script:scripts/bench-smoke"),
    (
        "cargo bench -- --profile-time",
        "script:scripts/bench-smoke",
    ),
    ("cargo bench -- scaling", "script:scripts/bench-smoke"),
    ("cargo bench", "script:scripts/bench-smoke"),
    ("cargo run --release -- generate --prompt", "here"),
    (
        "cargo run --release -- generate --model synthetic:llama3-8b",
        "here",
    ),
    ("cargo run --release -- run --quick", "here"),
    ("cargo run --release -- report", "here"),
    ("cargo run --release -- schema", "here"),
    ("llm-bench schema", "here"),
    (
        "llm-bench run",
        "test:tests/it/run.rs::every_phase_ran_the_requests_it_was_asked_for",
    ),
    (
        "llm-bench report serving/results.json",
        "test:tests/it/readme.rs::the_serving_commands_run_as_written",
    ),
    (
        "llm-bench report",
        "test:tests/it/run.rs::report_writes_markdown_and_charts_that_parse_as_svg",
    ),
    ("llm-bench compare", "here"),
    (
        "llm-bench gate --paired",
        "test:tests/it/gate.rs::paired_rounds_see_through_drift_between_rounds",
    ),
    (
        "llm-bench gate",
        "test:tests/it/gate.rs::exit_codes_and_one_sided_ids",
    ),
    ("scripts/bench-ab", "script:scripts/bench-smoke"),
    (
        "scripts/gate-under-load",
        "test:tests/it/readme.rs::the_timing_scripts_parse_and_find_their_files",
    ),
    (
        "scripts/reference/decode-10pct-slower.patch",
        "test:tests/it/readme.rs::the_timing_scripts_parse_and_find_their_files",
    ),
    (
        "llm-bench generate",
        "test:tests/it/errors.rs::more_threads_than_cpus_are_capped_with_a_warning_and_recorded",
    ),
    (
        "scripts/serving-report",
        "test:tests/it/readme.rs::serving_report_script_runs_the_readme_commands",
    ),
    ("scripts/bench-baseline", "script:scripts/bench-smoke"),
    ("scripts/bench-check", "script:scripts/bench-smoke"),
    (
        "cargo run --release --features llama-cpp -- generate --engine llama-cpp",
        "test:tests/it/readme.rs::the_engine_commands_run_as_written",
    ),
    (
        "cargo run --release --features llama-cpp -- run --quick --engine candle --engine llama-cpp",
        "test:tests/it/readme.rs::the_engine_commands_run_as_written",
    ),
    (
        "cargo run --release -- generate --engine tuned",
        "test:tests/it/readme.rs::the_engine_commands_run_as_written",
    ),
    ("scripts/install-llama-cpp-deps", "script:scripts/test"),
    (
        "llm-bench serve --max-sequences 16 &",
        "test:tests/it/readme.rs::the_serving_commands_run_as_written",
    ),
    (
        "llm-bench load http://127.0.0.1:8080",
        "test:tests/it/readme.rs::the_serving_commands_run_as_written",
    ),
    (
        "llm-bench serve",
        "test:tests/it/serve.rs::completions_answer_as_json_and_as_events_with_the_generated_text",
    ),
    (
        "llm-bench load http://127.0.0.1:8081",
        "test:tests/it/serve.rs::load_measures_llama_server_as_it_measures_serve",
    ),
    (
        "llm-bench load",
        "test:tests/it/serve.rs::load_sweeps_concurrency_against_serve",
    ),
    (
        "scripts/build-llama-server",
        "test:tests/it/serve.rs::load_measures_llama_server_as_it_measures_serve",
    ),
    (
        "\"$(scripts/build-llama-server)\"",
        "test:tests/it/serve.rs::load_measures_llama_server_as_it_measures_serve",
    ),
    ("scripts/bench-threads", "script:scripts/bench-smoke"),
    (
        "llm-bench doctor",
        "test:tests/contention.rs::doctor_names_a_busy_neighbour_and_exits_1",
    ),
    (
        "llm-bench export",
        "test:tests/it/readme.rs::the_export_command_runs_as_written",
    ),
    // A timing script (timing in tests is flaky): its syntax and the files it needs are checked.
    (
        "scripts/reference/llama-bench.cmake",
        "file:scripts/reference/llama-bench.cmake",
    ),
    (
        "scripts/llama-bench-overhead",
        "test:tests/it/readme.rs::the_timing_scripts_parse_and_find_their_files",
    ),
    (
        "scripts/decode-breakdown",
        "test:tests/it/readme.rs::the_timing_scripts_parse_and_find_their_files",
    ),
    (
        "scripts/kquant-table",
        "test:tests/it/readme.rs::the_timing_scripts_parse_and_find_their_files",
    ),
    (
        "ROUNDS=2 scripts/serve-table",
        "test:tests/it/readme.rs::the_timing_scripts_parse_and_find_their_files",
    ),
    (
        "ENGINE=llama-cpp scripts/serve-table",
        "test:tests/it/readme.rs::the_timing_scripts_parse_and_find_their_files",
    ),
    (
        "MODEL=target/kquant-table/",
        "test:tests/it/readme.rs::the_timing_scripts_parse_and_find_their_files",
    ),
    (
        "scripts/reference/make-vendored-fixtures",
        "file:scripts/reference/make-vendored-fixtures",
    ),
    ("cargo run --release --", "here"),
    // Named as the file that made the fixtures, not shown as a command to run.
    (
        "scripts/reference/make-fixtures.py",
        "file:scripts/reference/make-fixtures.py",
    ),
    ("cargo build --release", "script:scripts/test"),
    ("cargo test --release", "script:scripts/test"),
    // Tier 1 (`cargo test`): scripts/test runs the same tests with no model in reach.
    ("cargo test", "script:scripts/test"),
    // The measurements' Criterion runs: the smoke run runs this shape of command.
    ("LLM_BENCH_MODEL=", "script:scripts/bench-smoke"),
    (
        "LLM_BENCH_MUTATIONS=",
        "test:tests/mutations.rs::mutated_gguf_headers_fail_cleanly_or_load_consistently",
    ),
];

/// The README's command lines.
fn readme_commands() -> Vec<String> {
    commands_in(README)
}

/// Command lines in ```sh blocks (continuations joined, comments cut), and inline `code`
/// that starts like a command.
fn commands_in(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh";
            continue;
        }
        if in_sh {
            let code = line.split("  #").next().unwrap_or("").trim();
            pending.push_str(code.trim_end_matches('\\'));
            if !code.ends_with('\\') {
                if !pending.trim().is_empty() {
                    commands.push(pending.trim().to_string());
                }
                pending.clear();
            } else {
                pending.push(' ');
            }
            continue;
        }
        for (i, span) in line.split('`').enumerate() {
            let starts = ["cargo ", "llm-bench ", "scripts/", "LLM_BENCH_"];
            if i % 2 == 1 && starts.iter().any(|s| span.starts_with(s)) {
                commands.push(span.to_string());
            }
        }
    }
    commands
}

fn covered_by(command: &str) -> Option<&'static str> {
    COVERAGE
        .iter()
        .find(|(prefix, _)| command.starts_with(prefix))
        .map(|(_, by)| *by)
}

#[test]
fn every_documented_command_is_covered_by_a_test_or_a_ci_script_that_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let documents = documents();
    assert!(
        documents.len() >= 9,
        "found only {} documents",
        documents.len()
    );
    let commands: Vec<String> = documents
        .iter()
        .flat_map(|(_, text)| commands_in(text))
        .filter(|c| c.contains(' ') || c.starts_with("scripts/"))
        .collect();
    assert!(commands.len() > 30, "found only {commands:?}");
    let uncovered: Vec<&String> = commands
        .iter()
        .filter(|c| covered_by(c).is_none())
        .collect();
    assert!(
        uncovered.is_empty(),
        "documented commands run by no test or script (add one and list it in COVERAGE): {uncovered:?}"
    );
    for command in &commands {
        let by = covered_by(command).expect("checked above");
        if let Some(target) = by.strip_prefix("test:") {
            let (file, name) = target.split_once("::").unwrap();
            let source = std::fs::read_to_string(root.join(file)).unwrap();
            assert!(
                source.contains(&format!("fn {name}()")),
                "{command:?}: no test {target}"
            );
        } else if let Some(file) = by.strip_prefix("file:") {
            assert!(root.join(file).is_file(), "{command:?}: no file {file}");
        } else if let Some(script) = by.strip_prefix("script:") {
            let text = std::fs::read_to_string(root.join(script))
                .unwrap_or_else(|_| panic!("{command:?}: no script {script}"));
            // The program, past any `NAME=value` settings before it.
            let program = command
                .split(' ')
                .find(|w| !w.contains('='))
                .unwrap_or(command);
            assert!(
                text.contains(program),
                "{command:?}: {script} does not run {program}"
            );
        }
    }
    // The Criterion flags reach Criterion: the smoke run passes them through `cargo bench`.
    let smoke = std::fs::read_to_string(root.join("scripts/bench-smoke")).unwrap();
    for flags in [
        "cargo bench \"${cargo_args[@]}\" -- --quick",
        "cargo bench \"${cargo_args[@]}\" -- --profile-time",
        "cargo bench \"${cargo_args[@]}\" -- scaling",
    ] {
        assert!(
            smoke.contains(flags),
            "scripts/bench-smoke does not run {flags:?}"
        );
    }
}

/// The README's `cargo run --release -- ARGS` as the built binary, run in `cwd`.
fn readme_run(command: &str, cwd: &Path) -> std::process::Output {
    let args = command
        .strip_prefix("cargo run --release -- ")
        .or_else(|| command.strip_prefix("cargo run --release --features llama-cpp -- "))
        .or_else(|| command.strip_prefix("llm-bench "))
        .unwrap();
    let mut words = Vec::new();
    let mut quoted: Option<String> = None;
    for word in args.split(' ').filter(|w| !w.is_empty()) {
        match quoted.as_mut() {
            Some(q) => {
                q.push(' ');
                q.push_str(word.trim_end_matches('"'));
                if word.ends_with('"') {
                    words.push(quoted.take().unwrap());
                }
            }
            None if word.starts_with('"') && !(word.len() > 1 && word.ends_with('"')) => {
                quoted = Some(word.trim_start_matches('"').to_string())
            }
            None => words.push(word.trim_matches('"').to_string()),
        }
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm-bench"));
    cmd.args(&words)
        .current_dir(cwd)
        .env_remove("LLM_BENCH_MODEL");
    // `run` as written, every phase at its smallest size (the settings flags' environment
    // variables, recorded in results.json as any setting is): the command, its output files
    // and what report and compare make of them are checked here; the measurements are
    // tests/it/run.rs's and the smoke run's.
    for (name, value) in RUN_SIZE {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

/// The smallest `run` that still has every phase: 4 new tokens, scaling 4 and 8, batches of
/// 1 and 2, one prompt per point.
const RUN_SIZE: [(&str, &str); 4] = [
    ("LLM_BENCH_MAX_NEW_TOKENS", "4"),
    ("LLM_BENCH_SCALING_TOKENS", "4,8"),
    ("LLM_BENCH_BATCH_SIZES", "1,2"),
    ("LLM_BENCH_PROMPTS_PER_POINT", "1"),
];

/// The first command, in README.md then docs/, that starts with `start`.
fn readme_line(start: &str) -> String {
    readme_commands()
        .into_iter()
        .chain(documents().iter().flat_map(|(_, text)| commands_in(text)))
        .find(|c| c.starts_with(start))
        .unwrap_or_else(|| panic!("neither README.md nor docs/ shows {start:?}"))
}

/// The README's serve and load lines as written: the default model behind the server on its
/// port, and a load sweep against it that completes every request at both levels.
#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn the_serving_commands_run_as_written() {
    let _alone = common::one_model_run_at_a_time();
    let serve = readme_line("llm-bench serve --max-sequences 16 &");
    let words: Vec<&str> = serve
        .trim_end_matches('&')
        .split_whitespace()
        .skip(1)
        .collect();
    let server = crate::serve::Server::spawn(&words);
    assert_eq!(server.base, "http://127.0.0.1:8080");
    let dir = tempfile::tempdir().unwrap();
    let out = readme_run(
        &readme_line("llm-bench load http://127.0.0.1:8080"),
        dir.path(),
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for row in ["| c=1 | 16 | 0 |", "| c=4 | 16 | 0 |"] {
        assert!(table.contains(row), "{row} missing:\n{table}");
    }
    assert!(table.contains("goodput"), "{table}");
    let report = readme_run(
        &readme_line("llm-bench report serving/results.json"),
        dir.path(),
    );
    assert!(report.status.success(), "{}", common::stderr(&report));
    let md = std::fs::read_to_string(dir.path().join("serving/report.md")).unwrap();
    for text in [
        "## Serving under load",
        "| c=4 | 16 | 0 |",
        "load-latency.svg",
    ] {
        assert!(md.contains(text), "{text} missing:\n{md}");
    }
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn the_quick_start_commands_run_as_written() {
    let _alone = common::one_model_run_at_a_time();
    let cwd = tempfile::tempdir().unwrap();
    let out = readme_run(
        &readme_line("cargo run --release -- generate --prompt"),
        cwd.path(),
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Paris"));

    let out = readme_run(
        &readme_line("cargo run --release -- generate --model synthetic:llama3-8b"),
        cwd.path(),
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["weights"].as_str(), json["format"].as_str()),
        (Some("synthetic"), Some("q4_0"))
    );
    // The 8B twin is built from quantized blocks generated chunk by chunk: its peak memory
    // stays near what the loaded model holds (the q4_0 weights plus candle's f32 embedding).
    assert_eq!(json["parameters"], 8_030_261_248u64);
    let loaded = json["weight_bytes"].as_f64().unwrap() + (128256 * 4096 * 4) as f64;
    let ratio = json["peak_rss_bytes"].as_f64().unwrap() / loaded;
    assert!(ratio < 1.2, "peak RSS is {ratio:.2}x the loaded model");

    let out = readme_run(
        &readme_line("cargo run --release -- run --quick"),
        cwd.path(),
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let results = cwd.path().join("llm-bench-results/results.json");
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    // The sizes came from the environment, and results.json says so.
    assert_eq!(value["settings"]["max_new_tokens"], 4);
    assert_eq!(value["settings"]["batch_sizes"], serde_json::json!([1, 2]));
    let out = readme_run(&readme_line("cargo run --release -- report"), cwd.path());
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(cwd.path().join("llm-bench-results/report.md").is_file());
    let out = readme_run("llm-bench schema", cwd.path());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/results-v3.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(printed, committed, "llm-bench schema differs from schemas/");
    // The usage line of compare, with the README's own example formats.
    let out = readme_run(
        "llm-bench compare llm-bench-results/results.json --base-format f32 --other-format q4_1 --output json",
        cwd.path(),
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let comparison: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(comparison["metrics"]
        .as_array()
        .is_some_and(|m| !m.is_empty()));
}

#[test]
fn serving_report_script_runs_the_readme_commands() {
    // The script is the README's run, report and compare lines in a row; check it says so
    // rather than run the same two minutes twice.
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/serving-report"),
    )
    .unwrap();
    for part in [
        "run --format q4_1 --format q8_0 --format f32",
        "report \"$OUT/results.json\"",
        "compare \"$OUT/results.json\" --base-format f32 --other-format q4_1",
    ] {
        assert!(
            script.contains(part),
            "scripts/serving-report lost {part:?}"
        );
    }
}

/// The engine section's commands, in a build with the llama.cpp engine (CI's).
#[cfg(feature = "llama-cpp")]
#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn the_engine_commands_run_as_written() {
    let _alone = common::one_model_run_at_a_time();
    let cwd = tempfile::tempdir().unwrap();
    let out = readme_run(
        &readme_line("cargo run --release --features llama-cpp -- generate --engine llama-cpp"),
        cwd.path(),
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Paris"));
    let out = readme_run(
        &readme_line("cargo run --release -- generate --engine tuned"),
        cwd.path(),
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Paris"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tuned engine"));
    let out = readme_run(
        &readme_line("cargo run --release --features llama-cpp -- run --quick --engine candle"),
        cwd.path(),
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let results = cwd.path().join("llm-bench-results/results.json");
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    let engines: Vec<&str> = value["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["model"]["engine"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        engines,
        [
            "candle",
            "candle",
            "llama-cpp",
            "llama-cpp",
            "tuned",
            "tuned"
        ]
    );
    let formats: Vec<&str> = value["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["model"]["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["q4_0", "q8_0", "q4_0", "q8_0", "q4_0", "q8_0"]);
    let out = readme_run(
        "llm-bench compare llm-bench-results/results.json --base-engine candle --other-engine llama-cpp --base-format q4_0 --other-format q4_0 --output json",
        cwd.path(),
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let comparison: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        comparison["other"]["label"]
            .as_str()
            .unwrap()
            .rsplit('+')
            .next(),
        Some("llama-cpp")
    );
    let out = readme_run(
        "llm-bench report llm-bench-results/results.json",
        cwd.path(),
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let report = std::fs::read_to_string(cwd.path().join("llm-bench-results/report.md")).unwrap();
    assert!(
        report.contains("+llama-cpp") && report.contains("+candle") && report.contains("+tuned")
    );
    assert!(report.contains("## Engines side by side"), "{report}");
}

#[test]
fn the_export_command_runs_as_written() {
    let cwd = tempfile::tempdir().unwrap();
    let line = readme_line("llm-bench export synthetic:");
    let out = readme_run(&line, cwd.path());
    assert!(out.status.success(), "{}", common::stderr(&out));
    let file = cwd.path().join(line.split(' ').next_back().unwrap());
    // The file reads back through llm-bench's own checked GGUF reader, as q4_0 throughout.
    let planned = llm_bench::model::plan(&llm_bench::ModelSpec::Gguf(file.clone()), None).unwrap();
    assert_eq!(planned.format_label, "q4_0");
    assert_eq!(planned.resolved.config.vocab_size, 49152);
    // A twin's export stays a twin in results: its random weights are never called real.
    assert_eq!(
        planned.resolved.weights_kind(),
        llm_bench::source::WeightsKind::Synthetic
    );
    #[cfg(feature = "llama-cpp")]
    {
        let (params, bytes) = llm_bench::engine::llama_cpp::model_facts(&file).unwrap();
        assert_eq!((params, bytes), (134_515_008, planned.weight_bytes()));
    }
}

#[test]
fn the_timing_scripts_parse_and_find_their_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for script in [
        "scripts/llama-bench-overhead",
        "scripts/bench-threads",
        "scripts/gate-under-load",
        "scripts/decode-breakdown",
        "scripts/kquant-table",
        "scripts/serve-table",
        "scripts/build-llama-server",
    ] {
        let out = Command::new("bash")
            .arg("-n")
            .arg(root.join(script))
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {}", common::stderr(&out));
    }
    // The README's 10%-slowdown revision is this patch on the current tree: it must still apply.
    if root.join(".git").exists() {
        let out = Command::new("git")
            .args([
                "apply",
                "--check",
                "scripts/reference/decode-10pct-slower.patch",
            ])
            .current_dir(root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the slowdown patch no longer applies: {}",
            common::stderr(&out)
        );
    }
    // The serving table loads both servers with `load`, llama-server from its build script.
    let serving = std::fs::read_to_string(root.join("scripts/serve-table")).unwrap();
    assert!(
        serving.contains("scripts/build-llama-server)") && serving.contains("\" load \"http"),
        "scripts/serve-table's servers and client"
    );
    // The k-quant table makes its files with the example that runs llama.cpp's quantizer.
    let table = std::fs::read_to_string(root.join("scripts/kquant-table")).unwrap();
    assert!(
        table.contains("--example llama_quantize")
            && root.join("examples/llama_quantize.rs").is_file(),
        "scripts/kquant-table's quantizer"
    );
    let overhead = std::fs::read_to_string(root.join("scripts/llama-bench-overhead")).unwrap();
    for needed in [
        "scripts/reference/llama-bench.cmake",
        "scripts/install-llama-cpp-deps",
    ] {
        assert!(
            overhead.contains(needed) && root.join(needed).is_file(),
            "{needed}"
        );
    }
}

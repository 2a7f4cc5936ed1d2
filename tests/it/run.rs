//! `llm-bench run`, `report` and `compare` end to end on a tiny model, and their bad input.

use crate::common;

use common::{assert_fails_with, cli, stderr, tiny_config, write_tiny_llama};
use llm_bench::results::Results;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Settings small enough for seconds, with every phase and two formats.
const SMALL_RUN: &[&str] = &[
    "run",
    "--quick",
    "--format",
    "f32",
    "--format",
    "q8_0",
    "--max-new-tokens",
    "4",
    "--scaling-tokens",
    "4,8",
    "--batch-sizes",
    "1,2",
    "--threads",
    "1,2",
];

/// The thread counts `--threads 1,2` gives on this machine (capped at its logical CPUs).
fn swept() -> Vec<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores >= 2 {
        vec![1, 2]
    } else {
        vec![1]
    }
}

/// One real run shared by the tests that only read its output.
fn shared_run() -> &'static (tempfile::TempDir, PathBuf) {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        write_tiny_llama(&model, &tiny_config(257, 512));
        let out = dir.path().join("out");
        let mut args = SMALL_RUN.to_vec();
        args.extend([
            "--model",
            model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let result = cli(&args, &[]);
        assert!(result.status.success(), "run failed: {}", stderr(&result));
        let summary = String::from_utf8_lossy(&result.stdout);
        assert!(
            summary.contains("model@f32") && summary.contains("model@q8_0"),
            "{summary}"
        );
        (dir, out.join("results.json"))
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn repo_schema() -> Value {
    read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/results-v3.schema.json"))
}

#[test]
fn the_committed_schema_is_the_one_the_code_writes() {
    assert_eq!(
        repo_schema(),
        llm_bench::results::json_schema(),
        "schemas/results-v3.schema.json is stale: regenerate it with `cargo run --release -- schema > schemas/results-v3.schema.json`"
    );
}

#[test]
fn results_validate_against_the_schema_and_round_trip() {
    let (_, path) = shared_run();
    let written = read_json(path);
    let validator = jsonschema::validator_for(&repo_schema()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&written)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    let results = Results::load(path).unwrap();
    let copy = path.with_file_name("copy.json");
    results.save(&copy).unwrap();
    assert_eq!(Results::load(&copy).unwrap(), results);
    assert_eq!(read_json(&copy), written, "load + save changes nothing");
}

#[test]
fn every_phase_ran_the_requests_it_was_asked_for() {
    let results = Results::load(&shared_run().1).unwrap();
    assert!(results.complete);
    let prompts = results.settings.as_ref().unwrap().prompts.len();
    assert_eq!(prompts, 5, "the built-in customer-support prompts");
    assert_eq!(results.runs.len(), 2);
    let formats: Vec<&str> = results
        .runs
        .iter()
        .map(|r| r.model.format.as_str())
        .collect();
    assert_eq!(formats, ["f32", "q8_0"]);
    for run in &results.runs {
        assert_eq!(run.error, None);
        assert!(run.model.spec.ends_with("model"), "{}", run.model.spec);
        let latency = run.latency.as_ref().unwrap();
        // --quick: one pass over the prompts, each exactly --max-new-tokens long.
        assert_eq!(latency.groups[0].requests.len(), prompts);
        for request in &latency.groups[0].requests {
            assert_eq!(request.generated_tokens, 4);
            assert_eq!(request.itl_ms.len(), 3);
            assert!(request.ttft_ms > 0.0 && request.e2e_ms >= request.ttft_ms);
        }
        let s = &latency.groups[0].summary;
        assert!(s.ttft_ms.p50 <= s.ttft_ms.p99 && s.e2e_ms.min <= s.e2e_ms.max);
        let strategies: Vec<&str> = run
            .strategies
            .as_ref()
            .unwrap()
            .groups
            .iter()
            .map(|g| g.setting.strategy.as_str())
            .collect();
        assert_eq!(
            strategies,
            ["greedy", "temperature=0.7", "top-k=50", "top-p=0.9"]
        );
        let lengths: Vec<usize> = run
            .scaling
            .as_ref()
            .unwrap()
            .groups
            .iter()
            .map(|g| g.setting.new_tokens)
            .collect();
        assert_eq!(lengths, [4, 8]);
        let batch = &run.batch.as_ref().unwrap().groups[1];
        assert_eq!(
            (batch.setting.batch, batch.requests[0].generated_tokens),
            (2, 8)
        );
        assert_eq!(
            run.throughput.as_ref().unwrap().groups[0].requests.len(),
            prompts
        );
        let roofline = run.roofline.as_ref().unwrap();
        assert_eq!(
            roofline.bytes_read_per_token,
            run.model.bytes_read_per_token
        );
        assert!(run.load.resources.peak_rss_bytes.unwrap() > 0);
        // `--threads 1,2`: the other phases ran on the largest count, the sweep on each.
        let largest = *swept().last().unwrap();
        assert_eq!(latency.groups[0].setting.threads, Some(largest));
        let sweep = run
            .threads
            .as_ref()
            .expect("a list of threads adds the sweep");
        let counts: Vec<Option<usize>> = sweep.groups.iter().map(|g| g.setting.threads).collect();
        assert_eq!(counts, swept().into_iter().map(Some).collect::<Vec<_>>());
        for group in &sweep.groups {
            assert_eq!(group.requests.len(), 2, "--quick: 2 prompts per point");
            assert!(group.summary.decode_tokens_per_s.is_some());
            // Each count's process measured the bandwidth on its own thread count.
            assert!(group.read_bytes_per_s.is_some_and(|b| b > 1e8), "{group:?}");
        }
    }
    assert_eq!(results.settings.as_ref().unwrap().thread_counts, swept());
    assert_eq!(
        results.settings.as_ref().unwrap().threads,
        *swept().last().unwrap()
    );
    assert!(results
        .settings
        .as_ref()
        .unwrap()
        .phases
        .contains(&"threads".to_string()));
    let bandwidth = results.memory_bandwidth.as_ref().unwrap();
    assert!(bandwidth.read_bytes_per_s > 1e8);
    // Cached unless other processes (this binary's other tests run CLIs at the same time)
    // made the measurement contended.
    let cached = Path::new(&shared_run().1)
        .with_file_name("memory-bandwidth.json")
        .is_file();
    assert_eq!(cached, bandwidth.contention.is_none(), "{bandwidth:?}");
}

#[test]
fn report_writes_markdown_and_charts_that_parse_as_svg() {
    let (dir, results) = shared_run();
    let out = dir.path().join("report");
    let result = cli(
        &[
            "report",
            results.to_str().unwrap(),
            "--price-per-hour",
            "0.5",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(result.status.success(), "{}", stderr(&result));
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    for section in [
        "## Models",
        "## Latency",
        "## Throughput",
        "## Sampling strategies",
        "## Scaling with output length",
        "## Batch size",
        "## Threads",
        "## Resources",
        "## Memory-bandwidth roofline",
        "## Cost efficiency",
        "## System",
        "At 0.5 USD per instance-hour",
    ] {
        assert!(markdown.contains(section), "missing {section:?}");
    }
    assert!(
        markdown.contains("efficiency"),
        "the threads table has no efficiency"
    );
    for chart in [
        "latency",
        "strategies",
        "scaling",
        "batch",
        "roofline",
        "threads-decode",
        "threads-prefill",
    ] {
        let file = format!("{chart}.svg");
        assert!(
            markdown.contains(&format!("]({file})")),
            "{file} is not embedded"
        );
        let svg = std::fs::read_to_string(out.join(&file)).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg", "{file}");
        let text: String = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(text.contains("q8_0"), "{file} has no q8_0 label");
    }
}

#[test]
fn a_report_of_two_files_keeps_their_runs_apart() {
    let (dir, results) = shared_run();
    let out = dir.path().join("report-of-two");
    let path = results.to_str().unwrap();
    let result = cli(&["report", path, path, "--out", out.to_str().unwrap()], &[]);
    assert!(result.status.success(), "{}", stderr(&result));
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.contains("model@q8_0+candle #1") && markdown.contains("model@q8_0+candle #2"));
    assert_eq!(
        markdown.matches("| CPU |").count(),
        2,
        "one system table per file"
    );
}

#[test]
fn compare_finds_quantized_weights_smaller_with_intervals_on_timings() {
    let (_, results) = shared_run();
    let path = results.to_str().unwrap();
    let result = cli(
        &[
            "compare",
            path,
            path,
            "--base-format",
            "f32",
            "--other-format",
            "q8_0",
            "--output",
            "json",
        ],
        &[],
    );
    assert!(result.status.success(), "{}", stderr(&result));
    let comparison: Value = serde_json::from_slice(&result.stdout).unwrap();
    let metric = |name: &str| {
        comparison["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["metric"] == name)
            .unwrap_or_else(|| panic!("no {name} in {comparison:#}"))
            .clone()
    };
    let weights = metric("weights in memory");
    // q8_0 stores 34 bytes per 32 weights against f32's 128: about 73% less.
    let change = weights["change"].as_f64().unwrap();
    assert!((-0.76..-0.70).contains(&change), "{change}");
    assert_eq!(weights["verdict"], "single-measurement");
    let e2e = metric("E2E latency");
    let interval = e2e["change_interval"].as_array().unwrap();
    assert!(interval[0].as_f64().unwrap() <= interval[1].as_f64().unwrap());
    assert_eq!(e2e["base"]["n"], 5);

    // A run against itself: every timing change is 0 and inside the noise.
    let same = cli(
        &[
            "compare",
            path,
            "--base-format",
            "q8_0",
            "--other-format",
            "q8_0",
            "--output",
            "json",
        ],
        &[],
    );
    let same: Value = serde_json::from_slice(&same.stdout).unwrap();
    for m in same["metrics"].as_array().unwrap() {
        assert_eq!(m["change"], 0.0, "{m}");
        let expected = if m["change_interval"].is_null() {
            "single-measurement"
        } else {
            "within-noise"
        };
        assert_eq!(m["verdict"], expected, "{m}");
    }

    let markdown = cli(
        &[
            "compare",
            path,
            "--base-format",
            "f32",
            "--other-format",
            "q8_0",
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&markdown.stdout);
    assert!(
        text.contains("# q8_0 vs f32") && text.contains("change [95% CI]"),
        "{text}"
    );
}

fn edited_copy(edit: impl FnOnce(&mut Value)) -> (tempfile::TempDir, PathBuf) {
    let mut value = read_json(&shared_run().1);
    edit(&mut value);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
    (dir, path)
}

#[test]
fn results_of_another_schema_version_are_refused_by_name() {
    // A version 2 file (before load sweeps were kept) is refused with both versions named.
    let (dir, path) = edited_copy(|v| v["schema_version"] = 2.into());
    let out = cli(&["report", path.to_str().unwrap()], &[]);
    assert_fails_with(
        &out,
        &["results.json", "schema version 2", "reads version 3"],
    );
    assert!(!dir.path().join("report.md").exists());
    let compare = cli(&["compare", path.to_str().unwrap()], &[]);
    assert_fails_with(&compare, &["schema version 2"]);
}

#[test]
fn a_missing_field_is_named_with_its_location() {
    let (dir, path) = edited_copy(|v| {
        v["runs"][0]["latency"]["groups"][0]["summary"]
            .as_object_mut()
            .unwrap()
            .remove("ttft_ms");
    });
    let out = cli(&["report", path.to_str().unwrap()], &[]);
    assert_fails_with(
        &out,
        &[
            "runs[0].latency.groups[0].summary",
            "missing field `ttft_ms`",
        ],
    );
    assert!(!dir.path().join("report.md").exists());

    let (_other_dir, other) = edited_copy(|v| v["schema"] = "criterion".into());
    assert_fails_with(
        &cli(&["report", other.to_str().unwrap()], &[]),
        &["not an llm-bench results file", "\"criterion\""],
    );
}

#[test]
fn a_price_that_is_not_positive_is_refused() {
    let (_, results) = shared_run();
    for price in ["0", "-1", "abc"] {
        let dir = tempfile::tempdir().unwrap();
        let out = cli(
            &[
                "report",
                results.to_str().unwrap(),
                "--out",
                dir.path().to_str().unwrap(),
                &format!("--price-per-hour={price}"),
            ],
            &[],
        );
        assert_fails_with(&out, &["--price-per-hour", "USD per hour"]);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing written for {price}"
        );
    }
}

#[test]
fn an_empty_prompts_file_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("prompts.txt");
    let out_dir = dir.path().join("out");
    let run_with = |contents: &str| {
        std::fs::write(&prompts, contents).unwrap();
        cli(
            &[
                "run",
                "--model",
                "synthetic:smollm2-135m",
                "--prompts",
                prompts.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ],
            &[],
        )
    };
    assert_fails_with(
        &run_with("\n  \n"),
        &["prompts.txt has no prompts", "one prompt per line"],
    );
    assert!(!out_dir.exists());
    assert_fails_with(
        &run_with("{\"prompt\": \"fine\"}\n{\"text\": \"wrong field\"}\n"),
        &["prompts.txt", "line 2", "\"prompt\""],
    );
    assert!(!out_dir.exists());
}

#[test]
fn an_unwritable_output_folder_fails_first_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A folder under a regular file cannot be created, whoever runs the test (root included).
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let out_dir = blocker.join("out");
    let started = std::time::Instant::now();
    let out = cli(
        &[
            "run",
            "--model",
            "synthetic:smollm2-135m",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_fails_with(
        &out,
        &["cannot write to the output folder", "a-file/out", "--out"],
    );
    assert!(
        started.elapsed().as_secs() < 20,
        "it failed before loading anything"
    );

    let (_, results) = shared_run();
    let out = cli(
        &[
            "report",
            results.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_fails_with(&out, &["cannot write to the output folder"]);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["a-file"], "no partial files");
    assert_eq!(std::fs::read(&blocker).unwrap(), b"");
}

#[test]
fn an_interrupted_run_keeps_the_phases_that_finished() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tiny_llama(&model, &tiny_config(257, 512));
    let out = dir.path().join("out");
    // A long throughput phase, so the run is surely inside it when killed.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_llm-bench"))
        .args([
            "run",
            "--model",
            model.to_str().unwrap(),
            "--format",
            "f32",
            "--quick",
            "--max-new-tokens",
            "4",
            "--throughput-rounds",
            "1000",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let path = out.join("results.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        // Every read must see a whole, valid file: writes are atomic.
        if let Ok(bytes) = std::fs::read(&path) {
            let value: Value = serde_json::from_slice(&bytes).expect("never a half-written file");
            if value["runs"][0]["latency"].is_object() {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the latency phase never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let results = Results::load(&path).unwrap();
    assert!(!results.complete);
    let run = &results.runs[0];
    assert!(run.latency.is_some() && run.throughput.is_none());
    // A report of the partial run says so.
    let report = cli(&["report", path.to_str().unwrap()], &[]);
    assert!(report.status.success(), "{}", stderr(&report));
    assert!(std::fs::read_to_string(out.join("report.md"))
        .unwrap()
        .contains("incomplete run"));
}

#[test]
fn outputs_longer_than_the_context_are_refused_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tiny_llama(&model, &tiny_config(257, 512));
    let out_dir = dir.path().join("out");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--model",
            model.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ];
        args.extend(extra);
        cli(&args, &[])
    };
    // The longest built-in prompt is 67 bytes: 67 + 600 > 512.
    assert_fails_with(
        &run(&["--scaling-tokens", "32,600"]),
        &[
            "--scaling-tokens",
            "67 tokens",
            "context of 512",
            "up to 445",
        ],
    );
    assert_fails_with(
        &run(&["--max-new-tokens", "500"]),
        &["67 tokens", "500 new tokens", "context holds 512"],
    );
    assert!(!out_dir.join("results.json").exists());
}

#[test]
fn edited_numbers_that_would_print_nonsense_are_refused_by_location() {
    for (edit, needles) in [
        (
            (|v: &mut Value| v["runs"][0]["latency"]["groups"] = serde_json::json!([]))
                as fn(&mut Value),
            &["runs[0].latency.groups", "is empty"][..],
        ),
        (
            |v: &mut Value| {
                v["runs"][0]["throughput"]["groups"][0]["summary"]["queries_per_s"] = (-2.0).into()
            },
            &[
                "runs[0].throughput.groups[0].summary.queries_per_s",
                "negative",
            ][..],
        ),
        (
            |v: &mut Value| {
                v["runs"][1]["throughput"]["groups"][0]["summary"]["queries_per_s"] = 0.into()
            },
            &["runs[1].throughput.groups[0].summary", "queries_per_s is 0"][..],
        ),
        (
            |v: &mut Value| {
                v["runs"][0]["latency"]["groups"][0]["requests"][0]["e2e_ms"] = (-3000.0).into()
            },
            &["requests[0].e2e_ms", "negative"][..],
        ),
        (
            |v: &mut Value| v["memory_bandwidth"]["read_bytes_per_s"] = 0.into(),
            &["memory_bandwidth", "read_bytes_per_s is 0"][..],
        ),
        // Figures that contradict one another.
        (
            |v: &mut Value| {
                let request = &mut v["runs"][0]["latency"]["groups"][0]["requests"][0];
                request["ttft_ms"] = (request["e2e_ms"].as_f64().unwrap() + 1.0).into()
            },
            &[
                "runs[0].latency.groups[0].requests[0]",
                "ttft_ms",
                "above e2e_ms",
            ][..],
        ),
        (
            |v: &mut Value| {
                let ttft = &mut v["runs"][0]["latency"]["groups"][0]["summary"]["ttft_ms"];
                ttft["p50"] = (ttft["p99"].as_f64().unwrap() * 2.0).into()
            },
            &["groups[0].summary.ttft_ms", "p50", "above p90"][..],
        ),
        (
            |v: &mut Value| {
                let e2e = &mut v["runs"][0]["latency"]["groups"][0]["summary"]["e2e_ms"];
                e2e["min"] = (e2e["max"].as_f64().unwrap() * 2.0).into()
            },
            &["groups[0].summary.e2e_ms", "min", "above p50"][..],
        ),
        (
            |v: &mut Value| v["runs"][0]["latency"]["groups"][0]["summary"]["requests"] = 0.into(),
            &["groups[0].summary.requests", "is 0 but the group lists"][..],
        ),
        (
            |v: &mut Value| v["runs"][0]["batch"]["groups"][0]["setting"]["batch"] = 0.into(),
            &["runs[0].batch.groups[0].setting.batch", "is 0"][..],
        ),
        (
            |v: &mut Value| v["runs"][1] = v["runs"][0].clone(),
            &["runs[1].model", "again, as runs[0]"][..],
        ),
    ] {
        let (dir, path) = edited_copy(edit);
        for command in ["report", "compare"] {
            let out = cli(&[command, path.to_str().unwrap()], &[]);
            assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
            let mut all = vec!["results.json"];
            all.extend_from_slice(needles);
            assert_fails_with(&out, &all);
        }
        assert!(!dir.path().join("report.md").exists());
    }
}

#[test]
fn a_phase_with_more_requests_than_any_run_makes_is_refused_quickly() {
    let (dir, path) = edited_copy(|v| {
        let group = &mut v["runs"][0]["latency"]["groups"][0];
        let request = group["requests"][0].clone();
        group["requests"] = Value::Array(vec![request; 100_001]);
        group["summary"]["requests"] = 100_001.into();
    });
    let started = std::time::Instant::now();
    for command in ["report", "compare"] {
        let out = cli(&[command, path.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        assert_fails_with(&out, &["runs[0].latency", "100001 requests", "100000"]);
    }
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    assert!(!dir.path().join("report.md").exists());
}

#[test]
fn a_model_name_with_pipes_or_line_breaks_keeps_the_report_tables_whole() {
    let (dir, path) =
        edited_copy(|v| v["runs"][0]["model"]["name"] = "evil|name\nsecond line".into());
    let out = cli(&["report", path.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains("evil\\|name second line"), "{report}");
    // Every table row has as many cell separators as its table's header row.
    let mut header_cells = None;
    for line in report.lines() {
        if !line.starts_with('|') {
            header_cells = None;
            continue;
        }
        let cells = line.replace("\\|", "").matches('|').count();
        match header_cells {
            None => header_cells = Some(cells),
            Some(n) => assert_eq!(cells, n, "misaligned row: {line}"),
        }
    }
}

#[test]
fn a_cached_bandwidth_of_zero_is_refused_by_field_not_used() {
    let (_, results) = shared_run();
    // The figure as the cache holds it (the run's own cache file is absent if its
    // measurement was contended by the other tests' processes).
    let mut value = read_json(results)["memory_bandwidth"].clone();
    value["contention"] = Value::Null;
    value["read_bytes_per_s"] = 0.into();
    value["per_allocation_bytes_per_s"] = serde_json::json!([0.0, 0.0, 0.0]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("memory-bandwidth.json"), value.to_string()).unwrap();
    let model = dir.path().join("model");
    write_tiny_llama(&model, &tiny_config(257, 512));
    let out = cli(
        &[
            "run",
            "--quick",
            "--threads",
            "2",
            "--phases",
            "latency",
            "--model",
            model.to_str().unwrap(),
            "--out",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_fails_with(
        &out,
        &[
            "memory-bandwidth.json",
            "per_allocation_bytes_per_s",
            "delete",
        ],
    );
}

/// `generate --threads 1,2`: one process per count, a summary each, then the sweep table.
#[test]
fn generate_sweeps_a_list_of_thread_counts_into_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tiny_llama(&model, &tiny_config(257, 512));
    let args = |json: bool| {
        let mut a = vec![
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--format",
            "q8_0",
            "--prompt",
            "hello",
            "--max-new-tokens",
            "6",
            "--min-new-tokens",
            "6",
            "--threads",
            "1,2",
        ];
        if json {
            a.push("--json");
        }
        cli(&a, &[])
    };
    let out = args(false);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("decode speedup (efficiency)") && text.contains("| 1 |"),
        "{text}"
    );
    assert_eq!(
        text.matches(" threads: TTFT ").count(),
        swept().len(),
        "{text}"
    );
    let out = args(true);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reports = json.as_array().expect("a JSON array for a thread list");
    let threads: Vec<usize> = reports
        .iter()
        .map(|r| r["threads"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(threads, swept());
    for r in reports {
        assert_eq!(r["output_tokens"].as_array().unwrap().len(), 6);
    }
    let zero = cli(
        &[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "hi",
            "--threads",
            "1,0",
        ],
        &[],
    );
    assert_eq!(zero.status.code(), Some(2));
    assert_fails_with(&zero, &["--threads", "whole numbers >= 1"]);
}

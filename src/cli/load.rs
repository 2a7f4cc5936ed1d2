//! `llm-bench load`: sweeps concurrency or request rates against an OpenAI-compatible
//! endpoint, prints each level's throughput, latencies and goodput, and keeps them in a
//! results file (`--out`) beside any other runs there.

use super::out::outln;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use llm_bench::load::{self, Level, Settings};
use llm_bench::results::{EndpointRun, Results, Slo, RESULTS_FILE, SCHEMA_ID, SCHEMA_VERSION};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(clap::Args)]
pub struct Args {
    /// The server: http://host:port (its /v1/completions is used), or an endpoint's full URL
    url: String,
    /// The model name requests carry [default: the first the server's /v1/models lists]
    #[arg(long)]
    model: Option<String>,
    /// Send chat messages to /v1/chat/completions rather than prompts to /v1/completions
    #[arg(long)]
    chat: bool,
    /// Closed loop: requests in flight, a list swept in turn (1,2,4,8,16) [default: 1]
    #[arg(long, value_delimiter = ',', conflicts_with = "rate")]
    concurrency: Vec<usize>,
    /// Open loop: requests per second, Poisson arrivals, a list swept in turn (0.5,1,2,inf)
    #[arg(long, value_delimiter = ',')]
    rate: Vec<String>,
    /// Requests per level
    #[arg(long, default_value_t = 32)]
    requests: usize,
    /// Prompt length in words drawn from the built-in prompts (about a token each; the server's usage has the count)
    #[arg(long, default_value_t = 128)]
    input_tokens: usize,
    /// Tokens each request generates (max_tokens; exactly this many unless --no-ignore-eos)
    #[arg(long, default_value_t = 128)]
    output_tokens: usize,
    /// A ShareGPT-style JSON file: each entry's first human turn is a prompt (instead of random words)
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// Let the model stop at end-of-sequence (do not send ignore_eos/min_tokens)
    #[arg(long)]
    no_ignore_eos: bool,
    /// Latency targets for goodput: ttft=500ms,tpot=50ms,e2e=10s
    #[arg(long, value_parser = Slo::parse)]
    slo: Option<Slo>,
    /// Untimed requests before the first level
    #[arg(long, default_value_t = 1)]
    warm_up: usize,
    /// Seed of the prompts and the arrivals
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Longest a level may take; no request is sent after it: 300s, 10m
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    level_time: Duration,
    /// Longest one request may take
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// Also keep the sweep in DIR/results.json (added to the endpoints a file already there
    /// holds), for `llm-bench report`
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The endpoint's name in results and reports [default: the server's host:port and the model]
    #[arg(long)]
    label: Option<String>,
    /// The served model as llm-bench loads it (a spec, as serve's --model): its tokenizer
    /// counts each request's tokens to check the server's usage
    #[arg(long, value_name = "SPEC")]
    tokenizer: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let levels = levels(&args)?;
    for (name, value) in [
        ("--requests", args.requests),
        ("--output-tokens", args.output_tokens),
        ("--input-tokens", args.input_tokens),
    ] {
        if value == 0 {
            anyhow::bail!("{name} must be at least 1, found 0");
        }
    }
    let url = endpoint(&args.url, args.chat)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let model = match &args.model {
        Some(model) => model.clone(),
        None => runtime.block_on(served_model(&url))?,
    };
    let needed = args.warm_up + levels.len() * args.requests;
    let prompts = match &args.dataset {
        Some(path) => {
            let prompts = load::prompts::sharegpt(path)?;
            if prompts.len() < needed {
                eprintln!(
                    "note: {} has {} prompts for {needed} requests: some repeat, and a server's prompt cache may answer those from memory",
                    path.display(),
                    prompts.len()
                );
            }
            prompts
        }
        None => load::prompts::random_words(needed, args.input_tokens, args.seed),
    };
    let tokenizer = match &args.tokenizer {
        Some(spec) => {
            let spec = llm_bench::ModelSpec::parse(spec)?;
            let planned = llm_bench::model::plan(&spec, None)
                .with_context(|| format!("loading --tokenizer {spec}"))?;
            Some(std::sync::Arc::new(planned.resolved.tokenizer))
        }
        None => None,
    };
    let settings = Settings {
        url: url.clone(),
        model: model.clone(),
        chat: args.chat,
        prompts,
        output_tokens: args.output_tokens,
        ignore_eos: !args.no_ignore_eos,
        requests: args.requests,
        level_time: args.level_time,
        request_timeout: args.request_timeout,
        seed: args.seed,
        slo: args.slo.unwrap_or_default(),
        tokenizer,
    };
    let mut endpoint = EndpointRun {
        label: match &args.label {
            Some(label) => label.clone(),
            None => default_label(&url, &model),
        },
        url: url.clone(),
        model: model.clone(),
        chat: args.chat,
        prompts_source: match &args.dataset {
            Some(path) => path.display().to_string(),
            None => "random words".into(),
        },
        input_words: args.dataset.is_none().then_some(args.input_tokens),
        output_tokens: args.output_tokens,
        ignore_eos: settings.ignore_eos,
        requests_per_level: args.requests,
        warm_up_requests: args.warm_up,
        seed: args.seed,
        slo: settings.slo,
        client_cpu_us_per_token: None,
        levels: Vec::new(),
    };
    // The results file is opened (or refused) before any request is sent, and written after
    // every level: an interrupted sweep keeps the levels it finished.
    let mut saved = match &args.out {
        Some(dir) => Some(SavedSweep::open(dir, &endpoint)?),
        None => None,
    };
    eprintln!(
        "llm-bench load: {url}, model {model}, {} requests per level",
        args.requests
    );
    let bar = ProgressBar::new((args.requests * levels.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} requests, {elapsed}")
            .expect("a valid template"),
    );
    let cpu_before = llm_bench::resources::process_cpu_time();
    let progress = |level: &Level, _: &load::request::Outcome| {
        bar.set_message(level.to_string());
        bar.inc(1);
    };
    let mut finished = |levels: &[llm_bench::results::LevelSummary]| match saved.as_mut() {
        Some(saved) => saved.update(|e| e.levels = levels.to_vec(), false),
        None => Ok(()),
    };
    let sweep = runtime.block_on(load::run(
        &settings,
        args.warm_up,
        &levels,
        &progress,
        &mut finished,
    ))?;
    bar.finish_and_clear();
    let cpu = llm_bench::resources::process_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before + sweep.counting_cpu));
    let summaries = sweep.levels;
    outln!(
        "{}\nlatencies in ms; TPOT excludes the first token; req/s and goodput per second of the level's wall time",
        llm_bench::report::load::level_table(&summaries, settings.slo.any(), None)
    )?;
    let streamed: f64 = summaries
        .iter()
        .map(|s| s.output_throughput * s.duration_s)
        .sum();
    let client = cpu.map(|cpu| client_cost(cpu, streamed));
    if let Some(line) = &client {
        eprintln!("{}", line.0);
    }
    if let Some(spec) = &args.tokenizer {
        check_counts(&summaries, spec);
    }
    if let Some(first) = summaries.iter().find_map(|s| s.first_failure.as_ref()) {
        eprintln!("first failure: {first}");
    }
    endpoint.client_cpu_us_per_token = client.as_ref().map(|c| c.1);
    if let Some(saved) = saved.as_mut() {
        saved.update(
            |e| e.client_cpu_us_per_token = endpoint.client_cpu_us_per_token,
            true,
        )?;
        eprintln!(
            "wrote {} (llm-bench report {} draws the curves)",
            saved.path.display(),
            saved.path.display()
        );
    }
    Ok(0)
}

/// Prints the server's token counts beside the tokenizer's, and a warning where they differ
/// by more than a token or 5% (a prompt's BOS, a re-encoded output's merges).
fn check_counts(levels: &[llm_bench::results::LevelSummary], spec: &str) {
    let mean = |pick: fn(&llm_bench::results::LevelSummary) -> Option<f64>| {
        let values: Vec<f64> = levels.iter().filter_map(pick).collect();
        llm_bench::stats::mean(&values)
    };
    let pairs = [
        (
            "prompt",
            mean(|l| l.mean_prompt_tokens),
            mean(|l| l.tokenizer_prompt_tokens),
        ),
        (
            "output",
            mean(|l| Some(l.mean_output_tokens).filter(|_| l.completed > 0)),
            mean(|l| l.tokenizer_output_tokens),
        ),
    ];
    for (what, server, ours) in pairs {
        let Some(ours) = ours else { continue };
        let Some(server) = server else {
            eprintln!("token counts: the server sent no {what} count; {spec}'s tokenizer counts {ours:.1} per request");
            continue;
        };
        eprintln!("token counts: {what} {server:.1} per request by the server's usage, {ours:.1} by {spec}'s tokenizer");
        if (server - ours).abs() > 1.0_f64.max(0.05 * ours) {
            eprintln!("warning: the server's {what} token count differs from the tokenizer's by more than 5%: is {spec} the model it serves?");
        }
    }
}

/// `127.0.0.1:8080 smollm2`: the server's address and the model name.
fn default_label(url: &str, model: &str) -> String {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_else(|| url.to_string());
    format!("{host} {model}")
}

/// A results file a sweep is kept in: the folder locked for the sweep, the sweep the last of
/// its endpoints.
struct SavedSweep {
    path: PathBuf,
    results: Results,
    _lock: llm_bench::fs::DirLock,
}

impl SavedSweep {
    /// Opens DIR/results.json (or starts one) and adds `endpoint` to it; a file that is not a
    /// results file of this version, or that already holds the label, is refused untouched.
    fn open(dir: &Path, endpoint: &EndpointRun) -> anyhow::Result<Self> {
        llm_bench::fs::prepare_output_dir(dir)?;
        let lock = llm_bench::fs::lock_output_dir(dir)?;
        let path = dir.join(RESULTS_FILE);
        let mut results = if path.exists() {
            Results::load(&path)?
        } else {
            new_results()
        };
        if results.endpoints.iter().any(|e| e.label == endpoint.label) {
            anyhow::bail!(
                "{} already holds a sweep labelled {:?}: pass --label to name this one apart, or another --out",
                path.display(),
                endpoint.label
            );
        }
        results.endpoints.push(endpoint.clone());
        let mut saved = SavedSweep {
            path,
            results,
            _lock: lock,
        };
        saved.update(|_| {}, false)?;
        Ok(saved)
    }

    /// Changes the sweep and writes the file atomically; `complete` says whether it ended.
    fn update(
        &mut self,
        change: impl FnOnce(&mut EndpointRun),
        complete: bool,
    ) -> llm_bench::Result<()> {
        change(self.results.endpoints.last_mut().expect("open added it"));
        self.results.complete = complete;
        self.results.save(&self.path)
    }
}

/// A results file with no runs yet: this machine, this build, this command.
fn new_results() -> Results {
    let now = SystemTime::now();
    let threads = llm_bench::system::configured_threads();
    Results {
        schema: SCHEMA_ID.into(),
        schema_version: SCHEMA_VERSION,
        complete: false,
        created: humantime::format_rfc3339_seconds(now).to_string(),
        created_unix: now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        command_line: std::env::args().collect(),
        settings: None,
        system: (&llm_bench::system::SystemInfo::collect(threads)).into(),
        build: (&llm_bench::system::BuildInfo::current()).into(),
        memory_bandwidth: None,
        runs: vec![],
        load_failures: vec![],
        endpoints: vec![],
    }
}

fn levels(args: &Args) -> anyhow::Result<Vec<Level>> {
    if !args.rate.is_empty() {
        return args
            .rate
            .iter()
            .map(|r| match r.trim() {
                "inf" | "infinity" => Ok(Level::Rate(f64::INFINITY)),
                r => match r.parse::<f64>() {
                    Ok(v) if v > 0.0 && v.is_finite() => Ok(Level::Rate(v)),
                    _ => anyhow::bail!("--rate: expected requests per second > 0 or inf (like 0.5,1,2,inf), found {r:?}"),
                },
            })
            .collect();
    }
    if args.concurrency.contains(&0) {
        anyhow::bail!(
            "--concurrency: expected whole numbers >= 1 (like 1,2,4,8), found {:?}",
            args.concurrency
        );
    }
    let list = if args.concurrency.is_empty() {
        vec![1]
    } else {
        args.concurrency.clone()
    };
    Ok(list.into_iter().map(Level::Concurrency).collect())
}

/// The endpoint for `url`: a server's root gets `/v1/completions` (or chat's).
fn endpoint(url: &str, chat: bool) -> anyhow::Result<String> {
    let parsed = url::Url::parse(url)
        .with_context(|| format!("{url:?} is not a URL: give one like http://127.0.0.1:8080"))?;
    if parsed.scheme() != "http" {
        anyhow::bail!("{url}: only http:// endpoints are supported (this build has no TLS); put the server on plain HTTP or behind a local proxy");
    }
    let path = parsed.path().trim_end_matches('/');
    if path.ends_with("/completions") {
        return Ok(url.to_string());
    }
    let tail = if chat {
        "chat/completions"
    } else {
        "completions"
    };
    let base = url.trim_end_matches('/');
    Ok(if path.ends_with("/v1") {
        format!("{base}/{tail}")
    } else {
        format!("{base}/v1/{tail}")
    })
}

/// The first model the server lists at `/v1/models`.
async fn served_model(endpoint: &str) -> anyhow::Result<String> {
    let root = endpoint.split("/v1/").next().unwrap_or(endpoint);
    let url = format!("{root}/v1/models");
    let body: serde_json::Value = reqwest::get(&url)
        .await
        .with_context(|| {
            format!("asking {url} for its models (is the server up? or pass --model)")
        })?
        .json()
        .await
        .with_context(|| format!("{url} did not answer a model list: pass --model"))?;
    body["data"][0]["id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{url} lists no model: pass --model"))
}

/// The client's own CPU per streamed token, and the tokens per second one core would stream.
fn client_cost(cpu: Duration, tokens: f64) -> (String, f64) {
    let us = cpu.as_secs_f64() * 1e6 / tokens.max(1.0);
    let line = format!(
        "client: {:.1} µs of CPU per streamed token ({:.0} tokens/s on one core)",
        us,
        1e6 / us.max(1e-9)
    );
    (line, us)
}

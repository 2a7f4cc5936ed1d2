//! Seeded mutation testing of the model loaders (stable Rust; `cargo fuzz` needs nightly).
//!
//! The real GGUF's header and metadata, and a small safetensors folder, are damaged in
//! thousands of ways: byte flips, truncations, and targeted changes to counts, dimensions,
//! offsets, types and string lengths. For every case: no panic, no abort, a bounded time,
//! bounded memory, and a load that succeeds must be consistent with its own config.
//!
//! `cargo test --release --test mutations` runs 1,000 GGUF and 1,000 safetensors cases
//! (under a minute on 2 cores); `LLM_BENCH_MUTATIONS=100000` runs that many of each.

mod common;

use common::gguf::{encode, real_model, Field, Header, VirtualFile};
use common::{tiny_config, write_tiny_llama};
use llm_bench::family::ModelConfig;
use llm_bench::gguf::Content;
use llm_bench::source::{gguf, gguf_header, ResolvedModel};
use llm_bench::spec::ModelSpec;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CASES_ENV: &str = "LLM_BENCH_MUTATIONS";
const DEFAULT_CASES: usize = 1000;
/// No case may take longer: a loader that spins or waits on nothing fails the test.
const CASE_TIME_LIMIT: Duration = Duration::from_secs(20);
/// The whole test's peak RSS: the model twice (bytes and data) plus a loaded engine.
const PEAK_RSS_LIMIT: u64 = 3 << 30;
/// Full engine builds (plus one forward step) of surviving GGUF cases, per run of the test.
const FULL_LOADS: usize = 6;

fn cases() -> usize {
    std::env::var(CASES_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// Runs `f` on its own thread; a panic or a case over the time limit fails the test, with
/// `what` (the mutation) in the message.
fn run_case<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(AssertUnwindSafe(f));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(CASE_TIME_LIMIT) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{what}: the loader panicked: {message}")
        }
        Err(_) => panic!("{what}: no answer within {CASE_TIME_LIMIT:?}"),
    }
}

/// An extreme or nearby value for a field of `width` bytes holding `old`.
fn targeted_value(rng: &mut StdRng, old: u64, width: usize) -> u64 {
    let max = if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    };
    let choices = [
        0,
        1,
        max,
        max / 2 + 1,
        old.wrapping_add(1),
        old.wrapping_sub(1),
        old.wrapping_mul(2),
        old / 2,
        1 << rng.random_range(0..(8 * width as u32).min(63)),
        rng.random::<u64>(),
    ];
    choices[rng.random_range(0..choices.len())] & max
}

fn read_le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | b as u64)
}

/// One edit of what the header means, written back as a well-formed header: two tensors'
/// offsets swapped, an offset moved, a tensor's type relabelled, or a metadata value stored
/// with another GGUF type. Each of them leaves every byte parseable, so only the loader's
/// checks of layout and types stand between them and a wrong result.
fn mutate_meaning(content: &Content, rng: &mut StdRng) -> (Vec<u8>, String) {
    use llm_bench::format::GgmlDType;
    use llm_bench::gguf::Value;
    let mut edited = content.clone();
    let mut names: Vec<String> = edited.tensor_infos.keys().cloned().collect();
    names.sort();
    let pick = |rng: &mut StdRng| names[rng.random_range(0..names.len())].clone();
    let what = match rng.random_range(0..4) {
        0 => {
            let (a, b) = (pick(rng), pick(rng));
            let offset_a = edited.tensor_infos[&a].offset;
            let offset_b = edited.tensor_infos[&b].offset;
            edited.tensor_infos.get_mut(&a).unwrap().offset = offset_b;
            edited.tensor_infos.get_mut(&b).unwrap().offset = offset_a;
            format!("offsets of {a} and {b} swapped")
        }
        1 => {
            let name = pick(rng);
            let info = edited.tensor_infos.get_mut(&name).unwrap();
            let old = info.offset;
            info.offset = [0, old + 32, old.saturating_sub(32), old * 2][rng.random_range(0..4)];
            format!("offset of {name}: {old} -> {}", info.offset)
        }
        2 => {
            let name = pick(rng);
            let types = [
                GgmlDType::F32,
                GgmlDType::F16,
                GgmlDType::Q4_0,
                GgmlDType::Q4_1,
                GgmlDType::Q8_0,
                GgmlDType::Q4K,
                GgmlDType::Q6K,
            ];
            let info = edited.tensor_infos.get_mut(&name).unwrap();
            let old = info.ggml_dtype;
            info.ggml_dtype = types[rng.random_range(0..types.len())];
            format!("{name} relabelled {old:?} -> {:?}", info.ggml_dtype)
        }
        _ => {
            let mut keys: Vec<String> = edited
                .metadata
                .iter()
                .filter(|(_, v)| !matches!(v, Value::Array(_)))
                .map(|(k, _)| k.clone())
                .collect();
            keys.sort();
            let key = keys[rng.random_range(0..keys.len())].clone();
            let old = edited.metadata[&key].clone();
            let number = match &old {
                Value::U32(x) => *x as f64,
                Value::F32(x) => *x as f64,
                Value::Bool(b) => *b as u8 as f64,
                _ => 1.0,
            };
            let new = [
                Value::U64(number as u64),
                Value::I32(number as i32),
                Value::F64(number),
                Value::F32(number as f32),
                Value::U32(number as u32),
                Value::U8(number as u8),
                Value::String(number.to_string()),
            ][rng.random_range(0..7)]
            .clone();
            edited.metadata.insert(key.clone(), new.clone());
            format!("{key}: {old:?} -> {new:?}")
        }
    };
    (encode(&edited).bytes, what)
}

/// One mutation of the header: new header bytes, the file's length, and what was done.
fn mutate(
    content: &Content,
    header: &Header,
    data_len: usize,
    rng: &mut StdRng,
) -> (Vec<u8>, u64, String) {
    let mut head = header.bytes.clone();
    let full_len = (head.len() + data_len) as u64;
    match rng.random_range(0..120u32) {
        // The meaning of a well-formed header: offsets, tensor types, metadata types.
        100.. => {
            let (head, what) = mutate_meaning(content, rng);
            let len = (head.len() + data_len) as u64;
            (head, len, what)
        }
        // Targeted: one numeric field set to an extreme or nearby value.
        0..=49 => {
            // A kind of field first, then one of that kind: the tokenizer's 100,000 strings
            // and scalars would otherwise crowd out the tensor table's few hundred dimensions,
            // types and offsets.
            let kinds = [
                Field::TensorCount,
                Field::MetadataCount,
                Field::StringLength,
                Field::ValueType,
                Field::ArrayLength,
                Field::Scalar,
                Field::DimensionCount,
                Field::Dimension,
                Field::TensorType,
                Field::DataOffset,
            ];
            let kind = kinds[rng.random_range(0..kinds.len())];
            let of_kind: Vec<&(Field, usize, usize)> = header
                .fields
                .iter()
                .filter(|(f, _, _)| *f == kind)
                .collect();
            let (field, at, width) = *of_kind[rng.random_range(0..of_kind.len())];
            let old = read_le(&head[at..at + width]);
            let new = targeted_value(rng, old, width);
            head[at..at + width].copy_from_slice(&new.to_le_bytes()[..width]);
            (
                head,
                full_len,
                format!("{field:?} at byte {at}: {old} -> {new}"),
            )
        }
        // Byte flips anywhere in the header.
        50..=74 => {
            let flips = rng.random_range(1..=4);
            let mut done = vec![];
            for _ in 0..flips {
                let at = rng.random_range(0..head.len());
                let mask = rng.random_range(1..=255u8);
                head[at] ^= mask;
                done.push(format!("byte {at} ^= {mask:#x}"));
            }
            (head, full_len, done.join(", "))
        }
        // Truncation, in the header or in the tensor data.
        75..=89 => {
            let len = if rng.random_bool(0.5) {
                rng.random_range(0..head.len() as u64)
            } else {
                rng.random_range(head.len() as u64..full_len)
            };
            (head, len, format!("truncated to {len} of {full_len} bytes"))
        }
        // A run of random bytes over a field and what follows it.
        90..=99 => {
            let (_, at, _) = header.fields[rng.random_range(0..header.fields.len())];
            let n = rng.random_range(1..=32).min(head.len() - at);
            rng.fill(&mut head[at..at + n]);
            (head, full_len, format!("{n} random bytes at {at}"))
        }
    }
}

/// What a GGUF that loads must satisfy, checked against the file's own content, not
/// against the loader's checks.
fn assert_consistent(resolved: &ResolvedModel, content: &Content, len: u64, what: &str) {
    let config: &ModelConfig = &resolved.config;
    assert!(
        config.validate().is_ok(),
        "{what}: loaded an invalid config {config:?}"
    );
    assert_eq!(config.hidden_size % config.num_heads, 0, "{what}");
    for spec in resolved.family.tensors(config) {
        let info = &content.tensor_infos[&spec.gguf_name];
        assert_eq!(
            info.shape.dims(),
            spec.shape.as_slice(),
            "{what}: {}",
            spec.gguf_name
        );
        let bytes = gguf_header::tensor_data_bytes(info.ggml_dtype, spec.elements() as u64)
            .unwrap_or_else(|| panic!("{what}: {} is not whole blocks", spec.gguf_name));
        assert!(
            content.tensor_data_offset + info.offset + bytes <= len,
            "{what}: {} extends past the file",
            spec.gguf_name
        );
    }
    assert!(
        resolved.tokenizer.vocab_size() <= config.vocab_size,
        "{what}"
    );
    assert_layout_tiles(content, what);
    assert_metadata_types(content, what);
}

/// The tensors' data regions, in offset order, follow one another with only alignment
/// padding between them, from offset 0: no overlap (two tensors read the same bytes) and no
/// gap (a type relabelled to a smaller one leaves bytes no tensor reads).
fn assert_layout_tiles(content: &Content, what: &str) {
    use llm_bench::gguf::Value;
    let alignment = match content.metadata.get("general.alignment") {
        Some(Value::U32(a)) => *a as u64,
        None => 32,
        Some(other) => panic!("{what}: loaded with general.alignment {other:?}"),
    };
    let mut regions: Vec<(u64, u64, &str)> = content
        .tensor_infos
        .iter()
        .map(|(name, info)| {
            let elements = info.shape.elem_count() as u64;
            let bytes =
                elements / info.ggml_dtype.block_size() as u64 * info.ggml_dtype.type_size() as u64;
            (info.offset, bytes, name.as_str())
        })
        .collect();
    regions.sort();
    let mut end = 0;
    for (offset, bytes, name) in regions {
        assert_eq!(
            offset, end,
            "{what}: loaded with {name} at {offset}, not {end}"
        );
        end = (offset + bytes).next_multiple_of(alignment);
    }
}

/// Every key the loader reads holds the GGUF type llama.cpp's writer gives it.
fn assert_metadata_types(content: &Content, what: &str) {
    use llm_bench::gguf::Value;
    let arch = match content.metadata.get("general.architecture") {
        Some(Value::String(arch)) => arch.clone(),
        other => panic!("{what}: loaded with general.architecture {other:?}"),
    };
    let type_name = |v: &Value| match v {
        Value::U32(_) => "U32",
        Value::F32(_) => "F32",
        Value::String(_) => "STRING",
        Value::Bool(_) => "BOOL",
        _ => "another type",
    };
    let arch_keys = [
        ("context_length", "U32"),
        ("embedding_length", "U32"),
        ("block_count", "U32"),
        ("feed_forward_length", "U32"),
        ("attention.head_count", "U32"),
        ("attention.head_count_kv", "U32"),
        ("rope.freq_base", "F32"),
        ("attention.layer_norm_rms_epsilon", "F32"),
    ]
    .map(|(suffix, expected)| (format!("{arch}.{suffix}"), expected));
    let tokenizer_keys = [
        ("tokenizer.ggml.bos_token_id", "U32"),
        ("tokenizer.ggml.eos_token_id", "U32"),
        ("tokenizer.ggml.pre", "STRING"),
        ("tokenizer.ggml.add_bos_token", "BOOL"),
    ]
    .map(|(key, expected)| (key.to_string(), expected));
    for (key, expected) in arch_keys.iter().chain(&tokenizer_keys) {
        if let Some(value) = content.metadata.get(key) {
            assert_eq!(
                type_name(value),
                *expected,
                "{what}: loaded with {key} = {value:?}"
            );
        }
    }
}

/// Runs `cases` cases on every core, case `i` seeded from `seed` and `i` so the set of cases
/// does not depend on which worker ran which.
fn for_each_case(cases: usize, seed: u64, case: impl Fn(usize, &mut StdRng) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= cases {
                    break;
                }
                let mut rng =
                    StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                case(i, &mut rng);
            });
        }
    });
}

#[derive(Default)]
struct Tally {
    refused: usize,
    loaded: usize,
    full_loads: usize,
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn mutated_gguf_headers_fail_cleanly_or_load_consistently() {
    let (content, data) = real_model();
    let header = encode(&content);
    let path = Path::new("mutated.gguf");
    let tally = std::sync::Mutex::new(Tally::default());
    let started = Instant::now();
    let cases = cases();
    for_each_case(cases, 0x6C6C_6D62, |case, rng| {
        let (head, len, what) = mutate(&content, &header, data.len(), rng);
        let what = format!("GGUF case {case} ({what})");
        let data = data.clone();
        let outcome = run_case(&what, move || {
            let mut file = VirtualFile::new(head, data, len);
            let content = gguf_header::read(&mut file, len)?;
            // The loader's view, kept to check the loaded model against independently.
            let view = content.clone();
            let resolved =
                gguf::resolve_content(ModelSpec::Gguf(path.into()), path, content, Box::new(file))
                    .map_err(|e| e.to_string())?;
            // Planning finishes the checks (tokenizer against the embedding, memory).
            let planned =
                llm_bench::model::plan_resolved(resolved, None).map_err(|e| e.to_string())?;
            Ok::<_, String>((planned, view))
        });
        let (planned, view) = match outcome {
            Err(message) => {
                assert!(!message.is_empty(), "{what}: an empty error");
                tally.lock().unwrap().refused += 1;
                return;
            }
            Ok(loaded) => loaded,
        };
        assert_consistent(&planned.resolved, &view, len, &what);
        let build = {
            let mut t = tally.lock().unwrap();
            t.loaded += 1;
            let build = t.full_loads < FULL_LOADS || cases > DEFAULT_CASES;
            t.full_loads += build as usize;
            build
        };
        if build {
            let what2 = what.clone();
            // Building may fail cleanly (e.g. a type candle cannot run); it must not panic.
            let _ = run_case(&what, move || {
                let mut model = planned.load().map_err(|e| e.to_string())?;
                let logits = model
                    .engine
                    .prefill(&[vec![1, 2, 3]])
                    .map_err(|e| e.to_string())?;
                assert_eq!(
                    (logits.batch(), logits.vocab),
                    (1, model.info.config.vocab_size),
                    "{what2}"
                );
                Ok::<(), String>(())
            });
        }
    });
    let peak = llm_bench::system::peak_rss_bytes().unwrap_or(0);
    assert!(peak < PEAK_RSS_LIMIT, "peak RSS {} MiB", peak >> 20);
    let t = tally.into_inner().unwrap();
    eprintln!(
        "GGUF mutations: {} cases, {} refused, {} loaded ({} built and run), {:.1} s, peak RSS {} MiB",
        t.refused + t.loaded,
        t.refused,
        t.loaded,
        t.full_loads,
        started.elapsed().as_secs_f64(),
        peak >> 20
    );
    assert_eq!(t.refused + t.loaded, cases);
    assert!(
        t.refused > 0 && t.loaded > 0,
        "the mutations exercised both outcomes"
    );
}

/// One mutation of the tiny safetensors folder, applied in `dir`.
fn mutate_folder(dir: &Path, rng: &mut StdRng) -> String {
    let config_path = dir.join("config.json");
    let weights_path = dir.join("model.safetensors");
    match rng.random_range(0..100) {
        // A config.json field set to an extreme, a wrong type, or removed.
        0..=39 => {
            let mut config: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
            let keys: Vec<String> = config.as_object().unwrap().keys().cloned().collect();
            let key = &keys[rng.random_range(0..keys.len())];
            let values = [
                serde_json::json!(0),
                serde_json::json!(-1),
                serde_json::json!(u64::MAX),
                serde_json::json!(1u64 << 31),
                serde_json::json!(3),
                serde_json::json!(1e300),
                serde_json::json!("64"),
                serde_json::Value::Null,
            ];
            // One index past the values removes the key.
            match values.get(rng.random_range(0..=values.len())) {
                Some(v) => config[key] = v.clone(),
                None => {
                    config.as_object_mut().unwrap().remove(key);
                }
            }
            std::fs::write(&config_path, config.to_string()).unwrap();
            format!("config.json {key} = {:?}", config.get(key))
        }
        // The safetensors header (an 8-byte length, then JSON): bytes flipped or its
        // numbers (shapes, offsets) replaced.
        40..=74 => {
            let mut bytes = std::fs::read(&weights_path).unwrap();
            let header_len = read_le(&bytes[..8]) as usize;
            let what = if rng.random_bool(0.3) {
                let at = rng.random_range(0..8 + header_len);
                let mask = rng.random_range(1..=255u8);
                bytes[at] ^= mask;
                format!("safetensors byte {at} ^= {mask:#x}")
            } else {
                let text = String::from_utf8_lossy(&bytes[8..8 + header_len]).to_string();
                let digits: Vec<usize> = text
                    .char_indices()
                    .filter(|(i, c)| {
                        c.is_ascii_digit() && !text[..*i].ends_with(|p: char| p.is_ascii_digit())
                    })
                    .map(|(i, _)| i)
                    .collect();
                let at = digits[rng.random_range(0..digits.len())];
                let end = text[at..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(text.len(), |n| at + n);
                let new =
                    ["0", "1", "99999999999", "18446744073709551615", "7"][rng.random_range(0..5)];
                let edited = format!("{}{new}{}", &text[..at], &text[end..]);
                let mut out = (edited.len() as u64).to_le_bytes().to_vec();
                out.extend_from_slice(edited.as_bytes());
                out.extend_from_slice(&bytes[8 + header_len..]);
                bytes = out;
                format!("safetensors number at {at}: {} -> {new}", &text[at..end])
            };
            std::fs::write(&weights_path, bytes).unwrap();
            what
        }
        // Truncation.
        75..=89 => {
            let bytes = std::fs::read(&weights_path).unwrap();
            let len = rng.random_range(0..bytes.len());
            std::fs::write(&weights_path, &bytes[..len]).unwrap();
            format!("model.safetensors truncated to {len} of {}", bytes.len())
        }
        // The 8-byte header length itself.
        _ => {
            let mut bytes = std::fs::read(&weights_path).unwrap();
            let old = read_le(&bytes[..8]);
            let new = targeted_value(rng, old, 8);
            bytes[..8].copy_from_slice(&new.to_le_bytes());
            std::fs::write(&weights_path, bytes).unwrap();
            format!("safetensors header length {old} -> {new}")
        }
    }
}

#[test]
fn mutated_safetensors_folders_fail_cleanly_or_run_consistently() {
    let original = tempfile::tempdir().unwrap();
    write_tiny_llama(original.path(), &tiny_config(257, 64));
    let files: Vec<(String, Vec<u8>)> = ["config.json", "tokenizer.json", "model.safetensors"]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read(original.path().join(f)).unwrap(),
            )
        })
        .collect();
    let work = tempfile::tempdir().unwrap();
    let tally = std::sync::Mutex::new((0usize, 0usize));
    let started = Instant::now();
    let cases = cases();
    for_each_case(cases, 0x5AFE_7E45, |case, rng| {
        let dir = work.path().join(format!("case{case}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let what = format!("safetensors case {case} ({})", mutate_folder(&dir, rng));
        let cleanup = dir.clone();
        let what2 = what.clone();
        let outcome = run_case(&what, move || {
            let spec = ModelSpec::LocalDir(dir);
            let mut model = llm_bench::load(&spec, None).map_err(|e| e.to_string())?;
            let config = model.info.config.clone();
            assert!(config.validate().is_ok(), "{what2}: {config:?}");
            let logits = model
                .engine
                .prefill(&[vec![1, 2, 3]])
                .map_err(|e| e.to_string())?;
            assert_eq!(
                (logits.batch(), logits.vocab),
                (1, config.vocab_size),
                "{what2}"
            );
            Ok::<(), String>(())
        });
        let _ = std::fs::remove_dir_all(cleanup);
        let mut t = tally.lock().unwrap();
        match outcome {
            Ok(()) => t.1 += 1,
            Err(message) => {
                assert!(!message.is_empty(), "{what}: an empty error");
                t.0 += 1;
            }
        }
    });
    let (refused, ran) = tally.into_inner().unwrap();
    assert_eq!(refused + ran, cases);
    let peak = llm_bench::system::peak_rss_bytes().unwrap_or(0);
    assert!(peak < PEAK_RSS_LIMIT, "peak RSS {} MiB", peak >> 20);
    eprintln!(
        "safetensors mutations: {} cases, {refused} refused, {ran} ran, {:.1} s",
        refused + ran,
        started.elapsed().as_secs_f64()
    );
    assert!(
        refused > 0 && ran > 0,
        "the mutations exercised both outcomes"
    );
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn the_encoder_reproduces_a_header_the_reader_accepts() {
    // The mutation test is only as good as its starting point: the re-encoded real header
    // must read back as the same content.
    let (content, data) = real_model();
    let header = encode(&content);
    let len = (header.bytes.len() + data.len()) as u64;
    let mut file = VirtualFile::new(header.bytes.clone(), data, len);
    let again = gguf_header::read(&mut file, len).unwrap();
    assert_eq!(again.metadata.len(), content.metadata.len());
    assert_eq!(again.tensor_infos.len(), content.tensor_infos.len());
    for (name, info) in &content.tensor_infos {
        let other = &again.tensor_infos[name];
        assert_eq!(
            (other.shape.dims(), other.offset, other.ggml_dtype),
            (info.shape.dims(), info.offset, info.ggml_dtype),
            "{name}"
        );
    }
    assert!(header.fields.iter().any(|(f, _, _)| *f == Field::Dimension));
}

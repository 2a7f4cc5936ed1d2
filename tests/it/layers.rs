//! The library's modules are in layers (`src/lib.rs` declares them under `// Layer N`
//! comments): a module may import only modules of its own layer or of a layer above it, and
//! no two modules may import each other, directly or through others. So engines never reach
//! the model layer or the harness. This test reads every `crate::` path in `src/` (comments
//! left out) and fails on an import that breaks the table or closes a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `(module, layer, position)` in the order `src/lib.rs` declares them.
fn layer_table(lib: &str) -> Vec<(String, usize, usize)> {
    let mut layer = None;
    let mut table = Vec::new();
    for line in lib.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("// Layer ") {
            let number: String = rest.chars().take_while(char::is_ascii_digit).collect();
            layer = Some(
                number
                    .parse::<usize>()
                    .expect("`// Layer N` names a number"),
            );
            continue;
        }
        let name = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
            .map(|r| r.trim_end_matches(';').to_string())
            .or_else(|| {
                line.strip_prefix("pub use ")
                    .and_then(|r| r.split_once(" as "))
                    .map(|(_, alias)| alias.trim_end_matches(';').to_string())
            });
        if let Some(name) = name {
            let layer =
                layer.unwrap_or_else(|| panic!("module {name} comes before any `// Layer N` line"));
            let position = table.len();
            table.push((name, layer, position));
        }
    }
    table
}

/// Source text without `//` comments (doc comments included), so prose naming a module is
/// not an import.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file's code names through `crate::`, including each name of a
/// `use crate::{a, b::c}` group.
fn imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        if at > 0 {
            let before = code[..at].chars().next_back().unwrap();
            if before.is_ascii_alphanumeric() || before == '_' {
                continue; // `llm_bench_crate::`, not this crate
            }
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        start = true;
                        continue;
                    }
                    _ => {}
                }
                if start && depth == 0 && !c.is_whitespace() {
                    let name = ident(&group[i..]);
                    if !name.is_empty() {
                        out.insert(name);
                    }
                    start = false;
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_import_points_up_the_layer_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let table = layer_table(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    assert!(table.len() > 20, "read only {table:?} from src/lib.rs");
    let find = |name: &str| table.iter().find(|(m, _, _)| m == name);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut broken = Vec::new();
    let mut seen = BTreeSet::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = top.trim_end_matches(".rs").to_string();
        // The binary (main.rs, cli/) sits above every layer; lib.rs is the table.
        if ["main", "cli", "lib"].contains(&module.as_str()) {
            continue;
        }
        let (_, layer, _) = find(&module)
            .unwrap_or_else(|| panic!("src/{module} is not in src/lib.rs's layer table"));
        seen.insert(module.clone());
        for import in imports(&code(&std::fs::read_to_string(file).unwrap())) {
            if import == module {
                continue;
            }
            let Some((_, their_layer, _)) = find(&import) else {
                continue; // a crate-root item such as `crate::Result`
            };
            graph
                .entry(module.clone())
                .or_default()
                .insert(import.clone());
            if their_layer > layer {
                broken.push(format!(
                    "{} (layer {layer}) imports crate::{import} (layer {their_layer})",
                    relative.display()
                ));
            }
        }
    }
    assert!(seen.len() > 20, "found only {seen:?}");
    assert!(
        broken.is_empty(),
        "imports that break the layer table in src/lib.rs (move the code down a layer, or the import up):\n{}",
        broken.join("\n")
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("modules import each other: {}", cycle.join(" -> "));
    }
}

/// A cycle of imports, as the modules along it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_error_type_imports_nothing_of_the_crate() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/error.rs");
    let found = imports(&code(&std::fs::read_to_string(src).unwrap()));
    assert!(found.is_empty(), "src/error.rs imports {found:?}");
}

#[test]
fn the_import_reader_sees_groups_paths_and_not_comments() {
    let text = "use crate::{a::B, c, d::{e, f}};\nlet x = crate::g::h();\n// crate::comment\n/// [`crate::doc`]\nuse llm_bench_crate::z;";
    let found: Vec<String> = imports(&code(text)).into_iter().collect();
    assert_eq!(found, ["a", "c", "d", "g"]);
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    };
    assert_eq!(find_cycle(&graph(&[("a", "b"), ("b", "c")])), None);
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let table = layer_table(
        "// Layer 0: x\npub mod error;\n// Layer 1\npub mod fs;\npub use k as kernels;\n",
    );
    assert_eq!(
        table,
        [
            ("error".to_string(), 0, 0),
            ("fs".to_string(), 1, 1),
            ("kernels".to_string(), 1, 2)
        ]
    );
}

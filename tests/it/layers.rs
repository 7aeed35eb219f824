//! The layers of the source, checked from its text: the doors (`server`, `rpc`, `rest`, `openapi`, `door`, `ui`) stand
//! on the dispatcher (`dispatch`, `credentials`), which stands on the handlers' vocabulary (`handler`), which the
//! handlers (`methods`, `methods/*`) stand on too. Imports point down only:
//!
//! - the handlers never import the dispatcher or the doors;
//! - the dispatcher never imports the handlers or the doors (it is handed the method table);
//! - the vocabulary imports none of the other layers;
//! - the doors never import the handlers (they reach them through the dispatcher).
//!
//! And no circle of imports runs through a layer by way of the other modules (`app`, `auth`, `params`…): a
//! circle that holds a module of a layer holds nothing outside that layer. Circles inside one layer (one handler
//! family calling another) are allowed.
//!
//! An import is any `crate::…` path outside comments and outside the `#[cfg(test)]` module that ends a file: tests
//! put the whole program together and may reach anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, top down, with their modules (`methods::*` is every file of `src/methods/`).
const LAYERS: [(&str, &[&str]); 4] = [
    ("door", &["server", "rpc", "rest", "openapi", "door", "ui"]),
    ("dispatcher", &["dispatch", "credentials", "idempotency"]),
    ("vocabulary", &["handler"]),
    ("handlers", &["methods", "methods::*"]),
];

/// Which layers each layer may import (besides itself and the modules outside the layers).
const ALLOWED: [(&str, &[&str]); 4] = [
    ("door", &["dispatcher", "vocabulary"]),
    ("dispatcher", &["vocabulary"]),
    ("vocabulary", &[]),
    ("handlers", &["vocabulary"]),
];

/// One `crate::` reference: the importing module, the module it names, and where.
#[derive(Debug, Clone)]
struct Edge {
    from: String,
    to: String,
    line: usize,
    text: String,
}

fn layer(module: &str) -> Option<&'static str> {
    LAYERS.iter().find_map(|(name, modules)| {
        let hit = modules
            .iter()
            .any(|m| *m == module || (*m == "methods::*" && module.starts_with("methods::")));
        hit.then_some(*name)
    })
}

/// The modules of `src/` and `src/methods/` (the binary's `main.rs` and the crate root `lib.rs` aside) with their
/// source text.
fn modules(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (dir, prefix) in [(root.join("src"), ""), (root.join("src/methods"), "methods::")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_some_and(|e| e == "rs") && !["main", "lib"].contains(&stem) {
                out.insert(format!("{prefix}{stem}"), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// The `crate::` references of one module's source, resolved to the modules they name.
fn references(from: &str, source: &str, submodules: &BTreeSet<String>) -> Vec<Edge> {
    let mut edges = Vec::new();
    for (n, line) in source.lines().enumerate() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let paths: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or_default().split(',').collect(),
                None => vec![rest],
            };
            for path in paths {
                let mut segments = path.trim().split("::").map(|s| {
                    s.trim_matches(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or_default()
                });
                let first = segments.next().unwrap_or_default();
                let to = match (first, segments.next()) {
                    ("methods", Some(sub)) if submodules.contains(&format!("methods::{sub}")) => {
                        format!("methods::{sub}")
                    }
                    _ => first.to_string(),
                };
                if !to.is_empty() && to != from {
                    edges.push(Edge {
                        from: from.to_string(),
                        to,
                        line: n + 1,
                        text: line.trim().to_string(),
                    });
                }
            }
        }
    }
    edges
}

/// Every import that points up or sideways across the layers, described.
fn layer_violations(edges: &[Edge]) -> Vec<String> {
    let mut out = Vec::new();
    for e in edges {
        let (Some(from), Some(to)) = (layer(&e.from), layer(&e.to)) else {
            continue;
        };
        let allowed = ALLOWED.iter().find(|(l, _)| *l == from).map_or(&[][..], |(_, a)| a);
        if from != to && !allowed.contains(&to) {
            out.push(format!(
                "{} ({from}) imports {} ({to}), line {}: {}",
                e.from, e.to, e.line, e.text
            ));
        }
    }
    out
}

/// Every circle of imports that holds a module of a layer and a module outside that layer, as the path around it.
fn circles_across_layers(edges: &[Edge]) -> Vec<String> {
    let mut graph: BTreeMap<&str, BTreeMap<&str, &Edge>> = BTreeMap::new();
    for e in edges {
        graph.entry(&e.from).or_default().entry(&e.to).or_insert(e);
    }
    let mut out = Vec::new();
    let mut seen: BTreeSet<BTreeSet<&str>> = BTreeSet::new();
    for e in edges {
        // The shortest way back from the edge's end to its start closes a circle through the edge.
        let Some(back) = shortest_path(&graph, &e.to, &e.from) else {
            continue;
        };
        let circle: Vec<&str> = std::iter::once(e.from.as_str()).chain(back.iter().copied()).collect();
        let members: BTreeSet<&str> = circle.iter().copied().collect();
        let layers: BTreeSet<Option<&str>> = members.iter().map(|m| layer(m)).collect();
        let one_layer = layers.len() == 1 && !layers.contains(&None);
        if layers.iter().any(Option::is_some) && !one_layer && seen.insert(members) {
            let steps: Vec<String> = circle
                .windows(2)
                .map(|w| {
                    let edge = graph[w[0]][w[1]];
                    format!("  {} → {} (line {}: {})", w[0], w[1], edge.line, edge.text)
                })
                .collect();
            out.push(format!("{}\n{}", circle.join(" → "), steps.join("\n")));
        }
    }
    out
}

/// The modules from `from` to `to` along imports, both included, fewest steps first.
fn shortest_path<'a>(
    graph: &BTreeMap<&'a str, BTreeMap<&'a str, &Edge>>,
    from: &'a str,
    to: &'a str,
) -> Option<Vec<&'a str>> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    let mut visited = BTreeSet::from([from]);
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut path = vec![to];
            while let Some(prev) = came_from.get(path[path.len() - 1]) {
                path.push(prev);
            }
            path.reverse();
            return Some(path);
        }
        for next in graph.get(at).into_iter().flat_map(|m| m.keys()) {
            if visited.insert(next) {
                came_from.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    None
}

/// The imports of the source tree at `root`, and what is wrong with them.
fn check(root: &Path) -> (Vec<Edge>, Vec<String>) {
    let modules = modules(root);
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let edges: Vec<Edge> = modules
        .iter()
        .flat_map(|(name, source)| references(name, source, &names))
        .collect();
    let mut problems = layer_violations(&edges);
    problems.extend(circles_across_layers(&edges));
    (edges, problems)
}

#[test]
fn imports_point_down_the_layers_and_close_no_circle_across_them() {
    let (edges, problems) = check(Path::new(env!("CARGO_MANIFEST_DIR")));
    // The scan must see the imports it is about, or it would pass on anything.
    for (from, to) in [
        ("dispatch", "handler"),
        ("methods::subnets", "handler"),
        ("server", "dispatch"),
    ] {
        assert!(
            edges.iter().any(|e| e.from == from && e.to == to),
            "the scan found no import of {to} by {from}"
        );
    }
    assert!(
        problems.is_empty(),
        "imports against the layers:\n{}",
        problems.join("\n")
    );
}

/// The checks themselves, on a made-up tree: a handler that imports the dispatcher, and a circle from the
/// vocabulary through an outside module back to it.
#[test]
fn the_check_names_the_offending_imports() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("methods")).unwrap();
    let files = [
        ("src/dispatch.rs", "use crate::handler::Ctx;\n"),
        (
            "src/handler.rs",
            "use crate::app::App; // crate::dispatch in a comment is no import\n",
        ),
        (
            "src/app.rs",
            "use crate::handler::Method;\n#[cfg(test)]\nmod tests { use crate::server; }\n",
        ),
        ("src/methods.rs", "pub fn f(ctx: &crate::handler::Ctx) {}\n"),
        (
            "src/methods/users.rs",
            "use crate::dispatch::{Caller, Ctx};\nuse crate::methods::users;\n",
        ),
    ];
    for (path, text) in files {
        std::fs::write(dir.path().join(path), text).unwrap();
    }
    let (_, problems) = check(dir.path());
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("methods::users (handlers) imports dispatch (dispatcher), line 1"));
    assert!(problems[1].starts_with("app → handler → app\n"), "{}", problems[1]);
}

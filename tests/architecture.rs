//! The shape of `src/` (docs/ARCHITECTURE.md), checked on every test run: no import circle among
//! its modules, every dependency pointing down the layers, no source file over 600 lines, and
//! `startup` used by `main` and `cli` only.
//!
//! A module is one file (`src/a/b.rs` or `src/a/b/mod.rs` is `a::b`; `src/main.rs` is the binary,
//! `main`). Module A depends on module B when A names B, or something in B, by a path: a `use`
//! declaration or a `crate::…`/`super::…`/`self::…` path (or one through a `use` alias or a child
//! module's name) anywhere in A's code, its inline test modules included. `mod b;` declarations
//! are containment, not dependency. Comments and string literals are ignored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

/// The layers of docs/ARCHITECTURE.md, top first: a module may use modules of its own layer or of
/// a lower one, never of a higher one. A module belongs to the layer of its longest listed prefix
/// (`address::routes` is a router, the rest of `address` a service the state owns).
const LAYERS: &[(&str, &[&str])] = &[
    ("entry point", &["main"]),
    ("commands", &["cli"]),
    ("wiring", &["startup"]),
    (
        "features: routers, screens, jobs and commands",
        &[
            "registration",
            "admin",
            "address::routes",
            "mail::verify",
            "health",
            "metrics",
            "emf",
            "assets",
            "openapi",
            "jobs",
            "ops",
            "dev",
            "stub_apis",
            "backup",
            "purge",
        ],
    ),
    ("application state", &["state"]),
    ("services the state owns", &["apis", "address", "inventory", "region", "mail", "catalog", "password"]),
    ("plumbing", &["db", "config", "external", "http", "telemetry", "crypto", "json"]),
    ("typed values", &["values"]),
];
/// Modules allowed to name `startup`: it wires everything, so only the entry points may use it.
const STARTUP_USERS: &[&str] = &["main", "cli"];

#[test]
fn src_has_no_import_circle() {
    let graph = Graph::of(&read_src());
    let circles = graph.circles();
    assert!(circles.is_empty(), "import circles among src/ modules (docs/ARCHITECTURE.md):\n{}", graph.describe(&circles));
}

/// The layer (0 = top) of a module, by its longest listed prefix.
fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(layer, (_, prefixes))| prefixes.iter().map(move |prefix| (layer, *prefix)))
        .filter(|(_, prefix)| module == *prefix || module.starts_with(&format!("{prefix}::")))
        .max_by_key(|(_, prefix)| prefix.len())
        .map(|(layer, _)| layer)
}

fn upward_edges(graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for ((from, to), at) in &graph.edges {
        match (layer_of(from), layer_of(to)) {
            (Some(a), Some(b)) if b < a => {
                problems.push(format!("{from} ({}) -> {to} ({})  ({at})", LAYERS[a].0, LAYERS[b].0));
            }
            (Some(_), Some(_)) => {}
            (None, _) => problems.push(format!("{from} is in no layer: add it to LAYERS and docs/ARCHITECTURE.md")),
            (_, None) => problems.push(format!("{to} is in no layer: add it to LAYERS and docs/ARCHITECTURE.md")),
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

#[test]
fn dependencies_point_down_the_layers() {
    let problems = upward_edges(&Graph::of(&read_src()));
    assert!(problems.is_empty(), "dependencies against the layers of docs/ARCHITECTURE.md:\n{}", problems.join("\n"));
}

#[test]
fn startup_is_used_by_the_entry_points_only() {
    let graph = Graph::of(&read_src());
    let offenders: Vec<String> = graph
        .edges
        .iter()
        .filter(|(edge, _)| edge.1 == "startup" && !STARTUP_USERS.contains(&edge.0.as_str()))
        .map(|(edge, at)| format!("{} -> startup ({at})", edge.0))
        .collect();
    assert!(
        offenders.is_empty(),
        "only {STARTUP_USERS:?} may use `startup`; routers take the state from `state`:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn no_source_file_is_over_the_line_limit() {
    let long: Vec<String> = read_src()
        .iter()
        .filter(|file| file.source.lines().count() > MAX_LINES)
        .map(|file| format!("{} ({} lines)", file.path.display(), file.source.lines().count()))
        .collect();
    assert!(long.is_empty(), "source files over {MAX_LINES} lines; split them by screen or by concern:\n{}", long.join("\n"));
}

// The checker checks itself on small made-up crates, so a broken parser cannot pass silently.

fn synthetic(files: &[(&str, &str)]) -> Graph {
    let files: Vec<SourceFile> = files
        .iter()
        .map(|(module, source)| SourceFile {
            path: PathBuf::from(format!("{module}.rs")),
            module: module.to_string(),
            source: source.to_string(),
        })
        .collect();
    Graph::of(&files)
}

#[test]
fn checker_finds_a_circle_through_use_declarations() {
    let graph = synthetic(&[
        ("", "pub mod a; pub mod b; pub mod c;"),
        ("a", "use crate::b::{self, Thing as Other};\nfn f() { b::g(); }"),
        ("b", "use crate::{c::{Deep}};"),
        ("c", "pub struct Deep; fn h() { let _ = crate::a::f; }"),
    ]);
    let circles = graph.circles();
    assert_eq!(circles, vec![vec!["a".to_string(), "b".to_string(), "c".to_string()]], "{}", graph.describe(&circles));
}

#[test]
fn checker_follows_super_child_modules_aliases_and_macros() {
    let graph = synthetic(&[
        ("", "pub mod admin; pub mod db;"),
        ("db", "#[macro_export]\nmacro_rules! with_pool { () => { $crate::admin::x() } }"),
        ("admin", "pub mod audit; mod inner { use super::super::db; }\npub fn x() { audit::record(); }"),
        ("admin::audit", "use crate::with_pool; pub fn record() { super::x(); }"),
    ]);
    let edges: BTreeSet<(String, String)> = graph.edges.keys().cloned().collect();
    for (from, to) in [("db", "admin"), ("admin", "db"), ("admin", "admin::audit"), ("admin::audit", "db"), ("admin::audit", "admin")] {
        assert!(edges.contains(&(from.to_string(), to.to_string())), "missing {from} -> {to} in {edges:?}");
    }
    assert_eq!(graph.circles().len(), 1);
}

#[test]
fn checker_finds_a_dependency_up_the_layers() {
    let graph = synthetic(&[("", "pub mod values; pub mod state;"), ("values", "use crate::state::AppState;"), ("state", "")]);
    let problems = upward_edges(&graph);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("values (typed values) -> state (application state)"), "{problems:?}");
    assert_eq!(layer_of("address::routes"), layer_of("registration"));
    assert_eq!(layer_of("address::postal"), layer_of("inventory"));
    assert_eq!(layer_of("nowhere"), None);
}

#[test]
fn checker_ignores_comments_strings_external_crates_and_mod_declarations() {
    let graph = synthetic(&[
        ("", "pub mod a; pub mod b;"),
        (
            "a",
            "pub mod b_like; // use crate::b::X;\n/* crate::b::Y /* nested */ */ const S: &str = \"crate::b::Z\"; const R: &str = r#\"super::b\"#;\nuse std::fmt; use axum::Router; fn f<'a>(c: char) -> bool { c == '\"' }",
        ),
        ("b", "use crate::a::Thing;"),
    ]);
    assert!(graph.circles().is_empty(), "{:?}", graph.edges);
    assert_eq!(graph.edges.len(), 1, "{:?}", graph.edges);
}

struct SourceFile {
    path: PathBuf,
    module: String,
    source: String,
}

fn read_src() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    assert!(files.len() > 20, "expected the crate's sources under {}", root.display());
    files
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<SourceFile>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).expect("read src/").map(|entry| entry.expect("dir entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path.strip_prefix(root).expect("under src/").with_extension("");
            let mut segments: Vec<String> = relative.iter().map(|part| part.to_string_lossy().into_owned()).collect();
            if segments.last().is_some_and(|last| last == "mod" || last == "lib") {
                segments.pop();
            }
            let source = std::fs::read_to_string(&path).expect("read source file");
            files.push(SourceFile {
                path: path.strip_prefix(root.parent().expect("crate dir")).expect("in crate").to_path_buf(),
                module: segments.join("::"),
                source,
            });
        }
    }
}

/// Module dependencies: (from, to) → where the first such reference is (`file:line`).
struct Graph {
    edges: BTreeMap<(String, String), String>,
}

impl Graph {
    fn of(files: &[SourceFile]) -> Graph {
        let modules: BTreeSet<String> = files.iter().map(|file| file.module.clone()).collect();
        let tokenised: Vec<(&SourceFile, Vec<Token>)> = files.iter().map(|file| (file, tokenise(&file.source))).collect();
        // `#[macro_export]` macros live at the crate root, wherever they are written.
        let mut macros = HashMap::new();
        for (file, tokens) in &tokenised {
            for window in tokens.windows(3) {
                if let [Token { kind: Kind::Ident(mac), .. }, Token { kind: Kind::Punct('!'), .. }, Token { kind: Kind::Ident(name), .. }] =
                    window
                    && mac == "macro_rules"
                {
                    macros.insert(name.clone(), file.module.clone());
                }
            }
        }
        let mut edges = BTreeMap::new();
        for (file, tokens) in &tokenised {
            let resolver = Resolver { modules: &modules, macros: &macros };
            for (target, line) in references(file, tokens, &resolver) {
                if target != file.module && !target.is_empty() {
                    edges.entry((file.module.clone(), target)).or_insert_with(|| format!("{}:{line}", file.path.display()));
                }
            }
        }
        Graph { edges }
    }

    /// Strongly connected components of more than one module, each sorted, in sorted order.
    fn circles(&self) -> Vec<Vec<String>> {
        let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (from, to) in self.edges.keys() {
            next.entry(from).or_default().push(to);
            next.entry(to).or_default();
        }
        let mut tarjan = Tarjan {
            next: &next,
            index: HashMap::new(),
            low: HashMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            counter: 0,
            components: Vec::new(),
        };
        for node in next.keys() {
            if !tarjan.index.contains_key(node) {
                tarjan.visit(node);
            }
        }
        let mut circles: Vec<Vec<String>> = tarjan
            .components
            .into_iter()
            .filter(|component| component.len() > 1)
            .map(|component| {
                let mut names: Vec<String> = component.into_iter().map(str::to_string).collect();
                names.sort();
                names
            })
            .collect();
        circles.sort();
        circles
    }

    fn describe(&self, circles: &[Vec<String>]) -> String {
        let mut out = String::new();
        for (n, circle) in circles.iter().enumerate() {
            out.push_str(&format!("circle {} ({} modules): {}\n", n + 1, circle.len(), circle.join(", ")));
            for ((from, to), at) in &self.edges {
                if circle.contains(from) && circle.contains(to) {
                    out.push_str(&format!("  {from} -> {to}  ({at})\n"));
                }
            }
        }
        out
    }
}

struct Tarjan<'a> {
    next: &'a BTreeMap<&'a str, Vec<&'a str>>,
    index: HashMap<&'a str, usize>,
    low: HashMap<&'a str, usize>,
    stack: Vec<&'a str>,
    on_stack: BTreeSet<&'a str>,
    counter: usize,
    components: Vec<Vec<&'a str>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, node: &'a str) {
        self.index.insert(node, self.counter);
        self.low.insert(node, self.counter);
        self.counter += 1;
        self.stack.push(node);
        self.on_stack.insert(node);
        for &to in &self.next[node] {
            if !self.index.contains_key(to) {
                self.visit(to);
                let low = self.low[node].min(self.low[to]);
                self.low.insert(node, low);
            } else if self.on_stack.contains(to) {
                let low = self.low[node].min(self.index[to]);
                self.low.insert(node, low);
            }
        }
        if self.low[node] == self.index[node] {
            let mut component = Vec::new();
            while let Some(top) = self.stack.pop() {
                self.on_stack.remove(top);
                component.push(top);
                if top == node {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Ident(String),
    PathSep,
    Punct(char),
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    line: usize,
}

/// Identifiers, `::` and single punctuation, without comments, string and char literals.
fn tokenise(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if at(i + 1) == '/' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        line += usize::from(chars[i] == '\n');
                        i += 1;
                    }
                }
            }
            '"' => i = skip_string(&chars, i + 1, &mut line),
            'r' | 'b' | 'c' if is_raw_string_start(&chars, i) => {
                let mut j = i + 1;
                if chars[i] != 'r' {
                    j += 1; // br"…", cr"…"
                }
                let mut hashes = 0;
                while at(j) == '#' {
                    hashes += 1;
                    j += 1;
                }
                j += 1; // the opening quote
                loop {
                    if j >= chars.len() {
                        break;
                    }
                    if chars[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                        j += 1 + hashes;
                        break;
                    }
                    line += usize::from(chars[j] == '\n');
                    j += 1;
                }
                i = j;
            }
            'b' | 'c' if at(i + 1) == '"' => i = skip_string(&chars, i + 2, &mut line),
            '\'' => {
                // A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
                if at(i + 1) == '\\' {
                    let mut j = i + 3;
                    while j < chars.len() && chars[j] != '\'' {
                        j += 1;
                    }
                    i = j + 1;
                } else if at(i + 2) == '\'' {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            ':' if at(i + 1) == ':' => {
                tokens.push(Token { kind: Kind::PathSep, line });
                i += 2;
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(Token { kind: Kind::Ident(word.trim_start_matches("r#").to_string()), line });
            }
            c if c.is_whitespace() => i += 1,
            '$' => i += 1, // `$crate` is `crate`
            c => {
                tokens.push(Token { kind: Kind::Punct(c), line });
                i += 1;
            }
        }
    }
    tokens
}

fn is_raw_string_start(chars: &[char], i: usize) -> bool {
    let mut j = i;
    if chars[j] != 'r' {
        j += 1;
        if chars.get(j) != Some(&'r') {
            return false;
        }
    }
    j += 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    // Not the tail of an identifier such as `bar"` (there is no such Rust), nor `r#ident`.
    chars.get(j) == Some(&'"') && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
}

/// Skips to just after the closing quote of a "…" literal whose body starts at `i`.
fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            c => {
                *line += usize::from(c == '\n');
                i += 1;
            }
        }
    }
    i
}

struct Resolver<'a> {
    modules: &'a BTreeSet<String>,
    macros: &'a HashMap<String, String>,
}

impl Resolver<'_> {
    /// The file module that the absolute path `segments` names (the longest module prefix), if
    /// it is in this crate.
    fn module_of(&self, segments: &[String]) -> Option<String> {
        if let [name] = segments
            && let Some(module) = self.macros.get(name)
        {
            return Some(module.clone());
        }
        (1..=segments.len()).rev().map(|n| segments[..n].join("::")).find(|name| self.modules.contains(name))
    }
}

/// The modules a file refers to, with the line of each reference.
fn references(file: &SourceFile, tokens: &[Token], resolver: &Resolver) -> Vec<(String, usize)> {
    let own: Vec<String> =
        if file.module.is_empty() || file.module == "main" { Vec::new() } else { file.module.split("::").map(str::to_string).collect() };
    // Inline modules (`mod tests { … }`) nest the module path for `super` and `self`.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
    let mut paths: Vec<(Vec<String>, Vec<String>, usize)> = Vec::new(); // (module path, segments, line)
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let current: Vec<String> = own.iter().cloned().chain(inline.iter().map(|(name, _)| name.clone())).collect();
        match &tokens[i].kind {
            Kind::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Kind::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, at)| *at > depth) {
                    inline.pop();
                }
                i += 1;
            }
            Kind::Ident(word) if word == "mod" => {
                if let (Some(Token { kind: Kind::Ident(name), .. }), Some(Token { kind: Kind::Punct('{'), .. })) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    depth += 1;
                    inline.push((name.clone(), depth));
                    i += 3;
                } else {
                    i += 1;
                }
            }
            Kind::Ident(word) if word == "use" && !matches!(i.checked_sub(1).map(|p| &tokens[p].kind), Some(Kind::PathSep)) => {
                let line = tokens[i].line;
                let mut j = i + 1;
                let mut leaves = Vec::new();
                parse_use_tree(tokens, &mut j, Vec::new(), &mut leaves);
                for (segments, alias) in leaves {
                    if let Some(alias) = alias {
                        aliases.insert(alias, segments.clone());
                    }
                    paths.push((current.clone(), segments, line));
                }
                i = j;
            }
            Kind::Ident(first)
                if matches!(tokens.get(i + 1).map(|t| &t.kind), Some(Kind::PathSep))
                    && !matches!(i.checked_sub(1).map(|p| &tokens[p].kind), Some(Kind::PathSep)) =>
            {
                let line = tokens[i].line;
                let mut segments = vec![first.clone()];
                let mut j = i + 1;
                while let (Some(Kind::PathSep), Some(Kind::Ident(next))) =
                    (tokens.get(j).map(|t| &t.kind), tokens.get(j + 1).map(|t| &t.kind))
                {
                    segments.push(next.clone());
                    j += 2;
                }
                paths.push((current, segments, line));
                i = j;
            }
            _ => i += 1,
        }
    }
    // Aliases are resolved after the whole file is read: a `use` may follow its first use.
    for (current, segments, line) in paths {
        if let Some(absolute) = absolute(&current, &segments, &aliases, resolver)
            && let Some(module) = resolver.module_of(&absolute)
        {
            found.push((module, line));
        }
    }
    found
}

/// Turns a path as written in module `current` into one from the crate root, or `None` when it
/// leads outside the crate (std, other crates, local types).
fn absolute(current: &[String], segments: &[String], aliases: &HashMap<String, Vec<String>>, resolver: &Resolver) -> Option<Vec<String>> {
    let (first, rest) = segments.split_first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" | "normal_form_app" => Vec::new(),
        "self" => current.to_vec(),
        "super" => {
            let mut base = current.to_vec();
            base.pop();
            let mut rest = rest;
            while let Some((next, tail)) = rest.split_first()
                && next == "super"
            {
                base.pop();
                rest = tail;
            }
            return Some(base.into_iter().chain(rest.iter().cloned()).collect());
        }
        name => {
            let child: Vec<String> = current.iter().cloned().chain([name.to_string()]).collect();
            if resolver.modules.contains(&child.join("::")) {
                child
            } else if let Some(target) = aliases.get(name) {
                // An alias whose own path is relative again (`use self::x as y`) was stored as
                // written; resolve it once more from the same module.
                let resolved = absolute(current, target, &HashMap::new(), resolver)?;
                return Some(resolved.into_iter().chain(rest.iter().cloned()).collect());
            } else {
                return None;
            }
        }
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

/// Reads one use tree (`a::b::{c, d::e as f, *}`) from `tokens[*j]` up to and including its `;`
/// (or, inside braces, up to the next `,` or `}`), collecting each leaf path and the name it binds.
fn parse_use_tree(tokens: &[Token], j: &mut usize, prefix: Vec<String>, leaves: &mut Vec<(Vec<String>, Option<String>)>) {
    let mut path = prefix;
    loop {
        match tokens.get(*j).map(|t| &t.kind) {
            Some(Kind::PathSep) => *j += 1,
            Some(Kind::Ident(word)) if word == "as" => {
                *j += 1;
                if let Some(Kind::Ident(alias)) = tokens.get(*j).map(|t| &t.kind) {
                    let alias = (alias != "_").then(|| alias.clone());
                    leaves.push((path.clone(), alias));
                    *j += 1;
                }
                return finish(tokens, j);
            }
            Some(Kind::Ident(word)) => {
                if word == "self" && !path.is_empty() {
                    // `a::{self}` binds `a`.
                } else {
                    path.push(word.clone());
                }
                *j += 1;
                if !matches!(tokens.get(*j).map(|t| &t.kind), Some(Kind::PathSep) | Some(Kind::Ident(_))) {
                    let alias = path.last().cloned();
                    leaves.push((path, alias));
                    return finish(tokens, j);
                }
            }
            Some(Kind::Punct('*')) => {
                *j += 1;
                leaves.push((path, None));
                return finish(tokens, j);
            }
            Some(Kind::Punct('{')) => {
                *j += 1;
                while !matches!(tokens.get(*j).map(|t| &t.kind), Some(Kind::Punct('}')) | None) {
                    parse_use_tree(tokens, j, path.clone(), leaves);
                    if matches!(tokens.get(*j).map(|t| &t.kind), Some(Kind::Punct(','))) {
                        *j += 1;
                    }
                }
                *j += 1; // `}`
                return finish(tokens, j);
            }
            _ => return finish(tokens, j),
        }
    }
}

/// After a leaf: consumes the statement's `;` (top level) and leaves `,`/`}` to the caller.
fn finish(tokens: &[Token], j: &mut usize) {
    if matches!(tokens.get(*j).map(|t| &t.kind), Some(Kind::Punct(';'))) {
        *j += 1;
    }
}

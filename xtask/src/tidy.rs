//! Repository rules, checked by `cargo xtask tidy` and by this module's tests, so that a plain
//! `cargo test` enforces them too.

use core::fmt;
use std::{
    fs, io,
    path::{Path, PathBuf},
};

use crate::{Result, crate_dirs};

/// The directories of a crate that hold Rust sources.
const SOURCE_DIRS: &[&str] = &["src", "tests", "benches", "examples"];

/// Text that must appear nowhere, with the reason. Each needle is split by `concat!` so that this
/// file does not flag itself.
const MARKERS: &[(&str, &str)] = &[
    (
        concat!("#[", "ignore"),
        "assert today's behaviour, with a FIXME",
    ),
    (
        concat!("#[", "should_panic"),
        "assert on the `Err` or `None`",
    ),
    (concat!("todo", "!("), "unfinished code"),
    (concat!("unimplemented", "!("), "unfinished code"),
    (concat!("dbg", "!("), "leftover debugging"),
];

/// What `pool-core` must not name outside comments: it is handed `now` by its caller and is
/// polled by thin adapters, so it never reads a clock, sleeps, or picks a runtime.
const CORE_FORBIDDEN: &[&str] = &[
    "Instant::now",
    "SystemTime",
    "std::time",
    "thread::sleep",
    "tokio",
    "async_std",
    "smol::",
    "async_io",
];

/// The most lines a library or binary source file under `crates/*/src` may have. A file past it does more
/// than one job; split it by job (see `docs/architecture.md`). Tests and examples are exempt: a suite of
/// ported cases is long by nature.
const MAX_SOURCE_LINES: usize = 600;

/// One broken rule, shown as `path:line: message` so that editors can jump to it.
#[derive(Debug)]
pub(crate) struct Violation {
    path: PathBuf,
    line: usize,
    message: String,
}

impl Violation {
    fn new(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Violation {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

/// A Rust source file, with its path relative to the workspace root.
struct SourceFile {
    path: PathBuf,
    text: String,
}

/// Prints every violation in the tree, and fails if there are any.
pub(crate) fn report(root: &Path) -> Result<()> {
    let violations = check(root)?;
    for violation in &violations {
        println!("{violation}");
    }
    if !violations.is_empty() {
        return Err(format!("tidy found {} violation(s)", violations.len()).into());
    }
    println!("tidy: no violations");
    Ok(())
}

/// Every violation in the tree under `root`.
fn check(root: &Path) -> io::Result<Vec<Violation>> {
    let files = source_files(root)?;
    let mut violations = missing_module_docs(&files);
    violations.extend(forbidden_markers(&files));
    violations.extend(core_impurities(&files));
    violations.extend(long_files(&files));
    violations.extend(manifest_violations(root)?);
    violations.extend(license_violations(root));
    Ok(violations)
}

fn source_files(root: &Path) -> io::Result<Vec<SourceFile>> {
    let mut paths = Vec::new();
    for krate in crate_dirs(root)? {
        for dir in SOURCE_DIRS {
            collect_rs(&krate.join(dir), &mut paths)?;
        }
    }
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let text = fs::read_to_string(&path)?;
        let path = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        files.push(SourceFile { path, text });
    }
    Ok(files)
}

fn collect_rs(dir: &Path, paths: &mut Vec<PathBuf>) -> io::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rs(&path, paths)?;
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            paths.push(path);
        }
    }
    Ok(())
}

/// Every line of every file, numbered from one.
fn lines(files: &[SourceFile]) -> impl Iterator<Item = (&Path, usize, &str)> {
    files.iter().flat_map(|file| {
        let numbered = file.text.lines().enumerate();
        numbered.map(|(idx, line)| (file.path.as_path(), idx + 1, line))
    })
}

fn missing_module_docs(files: &[SourceFile]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for file in files {
        // The first non-empty line starts where the leading whitespace ends.
        let rest = file.text.trim_start();
        if !rest.starts_with("//!") {
            let line_no = file.text[..file.text.len() - rest.len()]
                .matches('\n')
                .count()
                + 1;
            let message = "a file must start with a `//!` doc saying what it is for";
            violations.push(Violation::new(&file.path, line_no, message));
        }
    }
    violations
}

fn forbidden_markers(files: &[SourceFile]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (path, line_no, line) in lines(files) {
        for (needle, why) in MARKERS.iter().filter(|(needle, _)| line.contains(needle)) {
            violations.push(Violation::new(path, line_no, format!("`{needle}`: {why}")));
        }
    }
    violations
}

fn core_impurities(files: &[SourceFile]) -> Vec<Violation> {
    let mut violations = Vec::new();
    let core_code = lines(files).filter(|(path, _, line)| {
        path.starts_with("crates/pool-core/src") && !line.trim_start().starts_with("//")
    });
    for (path, line_no, line) in core_code {
        for needle in CORE_FORBIDDEN
            .iter()
            .filter(|needle| line.contains(*needle))
        {
            let message = format!("`{needle}`: pool-core must not read a clock or name a runtime");
            violations.push(Violation::new(path, line_no, message));
        }
    }
    violations
}

fn long_files(files: &[SourceFile]) -> Vec<Violation> {
    let in_crate_src = |path: &Path| {
        let mut parts = path.components().map(|c| c.as_os_str());
        parts.next().is_some_and(|p| p == "crates")
            && parts.next().is_some()
            && parts.next().is_some_and(|p| p == "src")
    };
    files
        .iter()
        .filter(|file| in_crate_src(&file.path))
        .filter_map(|file| {
            let n = file.text.lines().count();
            let message = format!(
                "{n} lines, over the {MAX_SOURCE_LINES}-line limit for crates/*/src: split the file by job"
            );
            (n > MAX_SOURCE_LINES).then(|| Violation::new(&file.path, n, message))
        })
        .collect()
}

fn manifest_violations(root: &Path) -> io::Result<Vec<Violation>> {
    let mut violations = Vec::new();
    for krate in crate_dirs(root)? {
        let path = krate.join("Cargo.toml");
        let text = fs::read_to_string(&path)?;
        let path = path.strip_prefix(root).unwrap_or(&path);
        for message in manifest_problems(&text) {
            violations.push(Violation::new(path, 1, message));
        }
    }
    Ok(violations)
}

/// What a crate manifest lacks among the workspace lints and the MIT license.
fn manifest_problems(manifest: &str) -> Vec<&'static str> {
    // Whitespace and blank lines are dropped so that spacing cannot hide a key.
    let squeezed = manifest
        .lines()
        .map(|line| line.split_whitespace().collect::<String>());
    let lines: Vec<String> = squeezed.filter(|line| !line.is_empty()).collect();
    let has = |wanted: &str| lines.iter().any(|line| line == wanted);
    let lints_table = lines
        .windows(2)
        .any(|pair| pair[0] == "[lints]" && pair[1] == "workspace=true");
    let mut problems = Vec::new();
    if !lints_table && !has("lints.workspace=true") {
        problems.push("missing `[lints] workspace = true`");
    }
    if !has("license.workspace=true") && !has("license=\"MIT\"") {
        problems.push("missing `license.workspace = true` or `license = \"MIT\"`");
    }
    problems
}

fn license_violations(root: &Path) -> Vec<Violation> {
    let path = Path::new("LICENSE");
    let message = match fs::read_to_string(root.join(path)) {
        Ok(text) if text.contains("MIT License") => return Vec::new(),
        Ok(_) => "LICENSE must be the MIT License".to_owned(),
        Err(err) => format!("cannot read LICENSE: {err}"),
    };
    vec![Violation::new(path, 1, message)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_files() -> Vec<SourceFile> {
        source_files(&crate::project_root()).unwrap()
    }

    fn assert_clean(violations: Vec<Violation>) {
        let shown: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert!(
            shown.is_empty(),
            "tidy found violations:\n{}",
            shown.join("\n")
        );
    }

    /// One test per rule over the repository's source files, named after what the rule pins.
    macro_rules! source_rules {
        ($($name:ident => $check:ident,)*) => {$(
            #[test]
            fn $name() {
                assert_clean($check(&repo_files()));
            }
        )*};
    }

    source_rules! {
        every_module_has_a_module_doc => missing_module_docs,
        no_ignored_or_should_panic_tests_or_unfinished_code => forbidden_markers,
        pool_core_reads_no_clock_and_names_no_runtime => core_impurities,
        no_source_file_under_crates_src_is_over_the_line_limit => long_files,
    }

    #[test]
    fn every_crate_uses_workspace_lints_and_mit_license() {
        let root = crate::project_root();
        let mut violations = manifest_violations(&root).unwrap();
        violations.extend(license_violations(&root));
        assert_clean(violations);
    }

    #[test]
    fn checks_flag_planted_violations() {
        let core = "//! A.\n// Instant::now is fine here.\nInstant::now()\n".to_owned();
        let other = format!("\nfn b() {{}}\n{}]\n", MARKERS[0].0);
        let long = "//! A.\n".repeat(MAX_SOURCE_LINES + 1);
        let files = [
            ("crates/pool-core/src/a.rs", core),
            ("xtask/src/b.rs", other),
            ("crates/pool-x/src/long.rs", long.clone()),
            // Tests are exempt from the length limit.
            ("crates/pool-x/tests/long.rs", long),
        ]
        .map(|(path, text)| SourceFile {
            path: path.into(),
            text,
        });
        let located = |violations: Vec<Violation>| -> Vec<String> {
            let located = violations
                .iter()
                .map(|v| format!("{}:{}", v.path.display(), v.line));
            located.collect()
        };
        assert_eq!(located(missing_module_docs(&files)), ["xtask/src/b.rs:2"]);
        assert_eq!(located(forbidden_markers(&files)), ["xtask/src/b.rs:3"]);
        assert_eq!(
            located(core_impurities(&files)),
            ["crates/pool-core/src/a.rs:3"]
        );
        assert_eq!(
            located(long_files(&files)),
            [format!(
                "crates/pool-x/src/long.rs:{}",
                MAX_SOURCE_LINES + 1
            )]
        );

        assert!(manifest_problems("license = \"MIT\"\n[lints]\n\nworkspace = true\n").is_empty());
        assert_eq!(manifest_problems("[lints]\nclippy = {}\n").len(), 2);
    }
}

//! The crate is built in floors (see `src/lib.rs`); a file may name items of
//! its own floor and of the floors below it, never of a floor above. This
//! test reads every source file and fails on an upward `crate::` path.
//! Test modules (`#[cfg(test)]` to the end of a file) are exempt: a unit test
//! may drive its code through the whole pipeline.

use std::fs;
use std::path::Path;

/// Bottom to top.
const FLOORS: &[&str] = &["runtime", "syntax", "bytecode", "builtins", "compile", "vm"];

/// The only upward references, each for a reason that outweighs the rule.
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    // A closure value holds its compiled code; bytecode's constant pool holds values.
    ("runtime/value.rs", "bytecode", "closures hold their FunctionProto"),
    // A builtin used as a value prints `<builtin name>`; the names live in the table.
    ("runtime/value.rs", "builtins", "display of a builtin value names it"),
];

fn floor_of(rel: &str) -> Option<usize> {
    let first = rel.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    FLOORS.iter().position(|f| *f == name)
}

/// The top-level names of every `crate::...` path in `code` (grouped
/// `crate::{a::b, c}` imports included).
fn crate_refs(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `harnvm_crate::` or similar
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            out.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    out
}

/// The code of a file without its test module and without comments.
fn code_of(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

fn visit(dir: &Path, root: &Path, files: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visit(&path, root, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            files.push((rel, fs::read_to_string(&path).unwrap()));
        }
    }
}

fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in files {
        let Some(own) = floor_of(rel) else { continue }; // lib.rs is the roof
        for name in crate_refs(&code_of(text)) {
            let target = FLOORS.iter().position(|f| *f == name);
            let allowed = match target {
                Some(t) => t <= own || EXCEPTIONS.iter().any(|(file, floor, _)| file == rel && *floor == name),
                // A crate-root re-export would hide which floor an item is on.
                None => false,
            };
            if !allowed {
                out.push(format!("{rel} names crate::{name} ({} floor)", FLOORS[own]));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn no_floor_imports_from_a_floor_above() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&root, &root, &mut files);
    assert!(files.len() > 30, "found only {} source files", files.len());
    let found = violations(&files);
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn every_exception_is_still_needed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (file, floor, why) in EXCEPTIONS {
        let text = fs::read_to_string(root.join(file)).unwrap();
        assert!(
            crate_refs(&code_of(&text)).iter().any(|n| n == floor),
            "{file} no longer needs crate::{floor} ({why}); drop the exception"
        );
    }
}

#[test]
fn the_checker_sees_an_upward_path() {
    let files = vec![
        ("runtime/x.rs".to_string(), "use crate::vm::Vm;\nuse crate::{runtime::value, compile::modules};".to_string()),
        ("vm/y.rs".to_string(), "use crate::runtime::value::Value;\n#[cfg(test)]\nmod t { use crate::vm::Vm; }".to_string()),
        ("compile/z.rs".to_string(), "use crate::Program;".to_string()),
    ];
    assert_eq!(
        violations(&files),
        vec![
            "compile/z.rs names crate::Program (compile floor)".to_string(),
            "runtime/x.rs names crate::compile (runtime floor)".to_string(),
            "runtime/x.rs names crate::vm (runtime floor)".to_string(),
        ]
    );
}

//! drconsole among the tools around it: JSON Schemas an editor and CI can use (every shipped file valid, every
//! invalid fixture `check` rejects for its shape rejected by the schema too, the committed schema files the ones the
//! binary prints), shell completions, the manual page, `--version`, and docs that mention every command, flag and
//! action.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn drconsole(args: &[&str]) -> String {
    let out = Command::cargo_bin("drconsole").unwrap().args(args).output().unwrap();
    assert!(out.status.success(), "drconsole {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    out.sort();
    out
}

/// A TOML document as the JSON a schema validates (datetimes as their RFC 3339 text).
fn to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
    }
}

fn validator(kind: &str) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&drconsole(&["schema", kind])).unwrap();
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("`drconsole schema {kind}` is not a valid schema: {e}"))
}

fn errors(v: &jsonschema::Validator, file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    v.iter_errors(&to_json(toml::Value::Table(doc))).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

/// The shipped files of each kind, with the `#:schema` line each must carry.
fn shipped() -> Vec<(&'static str, PathBuf)> {
    let r = root();
    let mut out = Vec::new();
    for dir in ["runbooks", "runbooks/procedures", "runbooks/tabletop", "runbooks/examples"] {
        out.extend(toml_files(&r.join(dir)).into_iter().map(|p| ("runbook", p)));
    }
    out.extend(toml_files(&r.join("runbooks/incidents")).into_iter().map(|p| ("incident", p)));
    out.extend(toml_files(&r.join("runbooks/tabletop/worlds")).into_iter().map(|p| ("world", p)));
    out.extend(toml_files(&r.join("themes")).into_iter().map(|p| ("theme", p)));
    out
}

#[test]
fn every_shipped_file_is_valid_against_its_schema_and_names_it_for_editors() {
    let kinds = ["runbook", "incident", "world", "theme"];
    let validators: Vec<_> = kinds.iter().map(|k| (*k, validator(k))).collect();
    let files = shipped();
    assert!(files.len() >= 20, "found only {} shipped files", files.len());
    for (kind, file) in files {
        let v = &validators.iter().find(|(k, _)| *k == kind).unwrap().1;
        let errs = errors(v, &file);
        assert!(errs.is_empty(), "{} is not a valid {kind}: {errs:#?}", file.display());
        // taplo / Even Better TOML read the first `#:schema` line, relative to the file
        let text = std::fs::read_to_string(&file).unwrap();
        let line = text.lines().find(|l| l.starts_with("#:schema ")).unwrap_or_else(|| {
            panic!("{} has no `#:schema` line", file.display());
        });
        let target = file.parent().unwrap().join(line.trim_start_matches("#:schema ").trim());
        let want = root().join(format!("schemas/{kind}.schema.json"));
        assert_eq!(
            target.canonicalize().ok(),
            want.canonicalize().ok(),
            "{}: `{line}` should point to {}",
            file.display(),
            want.display()
        );
    }
}

#[test]
fn the_committed_schema_files_are_the_ones_the_binary_prints() {
    for kind in ["runbook", "incident", "world", "theme"] {
        let path = root().join(format!("schemas/{kind}.schema.json"));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            committed,
            drconsole(&["schema", kind]),
            "{} is stale: regenerate it with `drconsole schema {kind} > {}`",
            path.display(),
            path.display()
        );
    }
}

/// The kinds of `check` diagnostic that are about a file's shape, which a schema can see.
const SHAPE: &[&str] = &[
    "unknown-field",
    "missing-field",
    "wrong-type",
    "bad-name",
    "unknown-action",
    "unknown-param",
    "missing-param",
    "bad-duration",
    "bad-region",
];

/// Fixtures whose shape-kind diagnostic is about meaning a schema cannot express, with the reason.
const BEYOND_A_SCHEMA: &[(&str, &str)] = &[
    ("same_regions.toml", "primary and secondary must differ: JSON Schema cannot compare two fields"),
    ("var_kinds.toml", "a [vars] value judged by the parameter it reaches through ${vars.…}: data flow, not shape"),
];

#[test]
fn every_invalid_fixture_check_rejects_for_its_shape_the_schema_rejects_too() {
    let v = validator("runbook");
    let dir = root().join("tests/fixtures/invalid");
    let mut judged = 0;
    for file in toml_files(&dir) {
        let out = Command::cargo_bin("drconsole").unwrap().args(["check", "--json"]).arg(&file).output().unwrap();
        let diags: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let kinds: BTreeSet<String> =
            diags.as_array().into_iter().flatten().filter_map(|d| d["kind"].as_str().map(str::to_string)).collect();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if !kinds.iter().any(|k| SHAPE.contains(&k.as_str())) || BEYOND_A_SCHEMA.iter().any(|(f, _)| *f == name) {
            continue;
        }
        // a file that is not TOML at all has no shape to judge (its diagnostics say syntax)
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let Ok(doc) = toml::from_str::<toml::Table>(&text) else { continue };
        judged += 1;
        assert!(
            !v.is_valid(&to_json(toml::Value::Table(doc))),
            "{}: check says {kinds:?}, but the runbook schema accepts it",
            file.display()
        );
    }
    assert!(judged >= 15, "only {judged} invalid fixtures had a shape error to compare");
}

#[test]
fn completions_and_the_manual_page_come_from_the_command_line_definitions() {
    let bash = drconsole(&["completions", "bash"]);
    assert!(bash.contains("_drconsole()") && bash.contains("--recovery-point") && bash.contains("preflight"));
    for shell in ["zsh", "fish"] {
        assert!(drconsole(&["completions", shell]).contains("recovery-point"), "{shell}");
    }
    let man = drconsole(&["man"]);
    assert!(man.starts_with(".ie") || man.contains(".TH drconsole"), "{}", &man[..man.len().min(200)]);
    assert!(man.contains("recovery\\-point") || man.contains("recovery-point"));
    let version = drconsole(&["--version"]);
    assert!(version.starts_with(&format!("drconsole {}", env!("CARGO_PKG_VERSION"))), "{version}");
}
/// Every subcommand and every long flag of the command line, and every action of the catalogue.
fn public_names() -> Vec<String> {
    fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            if let Some(l) = a.get_long()
                && !matches!(l, "help" | "version")
            {
                out.push(format!("--{l}"));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_name() != "help" {
                out.push(format!("drconsole {}", sub.get_name()));
                walk(sub, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&<drconsole::cli::Cli as clap::CommandFactory>::command(), &mut out);
    out.extend(drconsole::actions::Registry::builtin().names().into_iter().map(|n| format!("`{n}`")));
    out.sort();
    out.dedup();
    out
}

/// What a doc page must show for a public name to count as documented.
fn mentioned(docs: &str, name: &str) -> bool {
    match name.strip_prefix("drconsole ") {
        Some(sub) => docs.contains(&format!("drconsole {sub}")) || docs.contains(&format!("`{sub}`")),
        None => docs.contains(name),
    }
}

#[test]
fn every_command_flag_and_action_is_mentioned_in_the_docs() {
    let mut docs = std::fs::read_to_string(root().join("README.md")).unwrap();
    for page in std::fs::read_dir(root().join("docs")).unwrap() {
        let page = page.unwrap().path();
        if page.extension().is_some_and(|e| e == "md") {
            docs.push_str(&std::fs::read_to_string(&page).unwrap());
        }
    }
    let missing: Vec<String> = public_names().into_iter().filter(|n| !mentioned(&docs, n)).collect();
    assert!(missing.is_empty(), "not mentioned in README.md or docs/*.md: {missing:?}");
}

#[test]
fn the_docs_coverage_check_fails_for_a_flag_no_page_mentions() {
    // the check above is only worth something if it can fail: a flag the docs never name is missing
    let docs = "drconsole check `check` --json `rds.restore_snapshot`";
    assert!(
        mentioned(docs, "--json") && mentioned(docs, "drconsole check") && mentioned(docs, "`rds.restore_snapshot`")
    );
    assert!(!mentioned(docs, "--a-flag-added-without-docs"));
    assert!(!mentioned(docs, "drconsole frobnicate"));
}

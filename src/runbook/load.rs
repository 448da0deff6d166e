//! Reading runbook files into a [`Runbook`], collecting every problem as a located [`Diagnostic`].
//!
//! The TOML is parsed into a spanned tree (`toml::de::DeTable`) and walked by hand rather than through serde, so
//! that one pass reports all errors at once, each at its own `file:line:col`.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::catalog::{Catalog, ParamKind};
use super::diag::{DiagKind, Diagnostic, Diagnostics, SourceFile};
use super::interp::{self, Segment};
use super::{Backend, Dag, Loc, Meta, OnFailure, Runbook, Step, Target, valid_name, valid_region};
use crate::util::{parse_duration, suggest};

/// The sections of a runbook file, and each section's fields: what the loader accepts, and what `drconsole schema
/// runbook` describes (crate::schema), so the two cannot drift.
pub(crate) const SECTIONS: &[&str] = &["runbook", "target", "state", "notify", "vars", "step"];
pub(crate) const RUNBOOK_FIELDS: &[&str] =
    &["name", "title", "app", "rto", "rpo", "owner", "description", "extends", "mode", "drill_record"];
pub(crate) const TARGET_FIELDS: &[&str] = &["backend", "account", "primary", "secondary"];
pub(crate) const STATE_FIELDS: &[&str] = &["shared", "region", "kms_key"];
pub(crate) const NOTIFY_FIELDS: &[&str] = &["webhooks"];
pub(crate) const STEP_FIELDS: &[&str] =
    &["id", "title", "action", "needs", "with", "timeout", "retries", "on_failure", "confirm", "expected", "doc"];
const RUNBOOK_REFS: &[&str] = &["name", "title", "app", "rto", "rpo", "owner", "description"];
const MAX_EXTENDS_DEPTH: usize = 8;

#[derive(Debug, Clone)]
struct L<T> {
    v: T,
    loc: Loc,
}

/// One file's contribution, before files are merged.
#[derive(Default)]
struct Partial {
    runbook_loc: Option<Loc>,
    name: Option<L<String>>,
    title: Option<L<String>>,
    app: Option<L<String>>,
    rto: Option<L<Duration>>,
    rpo: Option<L<Duration>>,
    owner: Option<L<String>>,
    description: Option<L<String>>,
    /// `mode = "drill"`: a recovery test (see `crate::drill`); `"recovery"` (the default) is a real failover.
    drill: Option<L<bool>>,
    /// `drill_record`: the drill record's template (`{id}`, `{record}`).
    drill_record: Option<L<String>>,
    extends: Option<L<String>>,
    backend: Option<L<Backend>>,
    account: Option<L<String>>,
    primary: Option<L<String>>,
    secondary: Option<L<String>>,
    target_loc: Option<Loc>,
    /// `[state]`: where the team's shared state lives.
    state_shared: Option<L<String>>,
    state_region: Option<L<String>>,
    state_kms_key: Option<L<String>>,
    /// `[notify] webhooks`: where the run's notifications are POSTed (`crate::notify`).
    notify: Option<L<Vec<String>>>,
    vars: Vec<(String, L<Value>)>,
    steps: Vec<PStep>,
    /// Fields written in the file, valid or not (`runbook.name`): a field with a bad value is reported once, as bad,
    /// not a second time as missing.
    present: HashSet<String>,
}

struct PStep {
    loc: Loc,
    id: Option<L<String>>,
    title: Option<L<String>>,
    action: Option<L<String>>,
    needs: Vec<L<String>>,
    with: Vec<(L<String>, L<Value>)>,
    timeout: Option<L<Duration>>,
    retries: Option<L<u32>>,
    on_failure: Option<L<OnFailure>>,
    confirm: Option<L<bool>>,
    expected: Option<L<Duration>>,
    doc: Option<L<String>>,
    /// Fields written in the step, valid or not.
    present: HashSet<String>,
}

struct Loader<'r> {
    files: Vec<SourceFile>,
    diags: Diagnostics,
    registry: &'r dyn Catalog,
}

type Item<'i> = Spanned<DeValue<'i>>;

/// Loads and validates a runbook file (and any file it `extends`).
pub fn load(path: &Path, registry: &dyn Catalog) -> Result<Runbook, Diagnostics> {
    match read_capped(path) {
        Ok(text) => load_str(path, &text, registry),
        Err(ReadError::Io(msg)) => {
            Err(Diagnostics(vec![Diagnostic::file(path, DiagKind::Syntax, format!("cannot read runbook: {msg}"))]))
        }
        Err(ReadError::Utf8 { text, offset }) => {
            let f = SourceFile::new(path, text);
            Err(Diagnostics(vec![f.diag(
                DiagKind::Syntax,
                offset..offset + 1,
                "invalid UTF-8: a runbook must be UTF-8 text (shown here as \u{fffd})",
            )]))
        }
    }
}

/// The most bytes a runbook (or a file it extends) may have: far more than any real runbook, and a file that is
/// not one (`/dev/zero`) is refused before it fills the memory.
pub const MAX_RUNBOOK_BYTES: u64 = 1024 * 1024;

enum ReadError {
    Io(String),
    /// Not UTF-8: the text with replacement characters, and the byte offset of the first bad byte in it.
    Utf8 {
        text: String,
        offset: usize,
    },
}

/// Reads a regular file of at most [`MAX_RUNBOOK_BYTES`] as UTF-8 text.
fn read_capped(path: &Path) -> Result<String, ReadError> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| ReadError::Io(e.to_string()))?;
    if !meta.is_file() {
        return Err(ReadError::Io("not a regular file".into()));
    }
    let f = std::fs::File::open(path).map_err(|e| ReadError::Io(e.to_string()))?;
    let mut bytes = Vec::new();
    f.take(MAX_RUNBOOK_BYTES + 1).read_to_end(&mut bytes).map_err(|e| ReadError::Io(e.to_string()))?;
    if bytes.len() as u64 > MAX_RUNBOOK_BYTES {
        return Err(ReadError::Io(format!("larger than {} KiB: not a runbook", MAX_RUNBOOK_BYTES / 1024)));
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = e.utf8_error().valid_up_to();
        let bytes = e.into_bytes();
        let offset = String::from_utf8_lossy(&bytes[..good]).len();
        ReadError::Utf8 { text: String::from_utf8_lossy(&bytes).into_owned(), offset }
    })
}

/// Where `extends` may reach: the top of the runbook's repository (the nearest directory above it holding `.git`),
/// else the runbook's own directory.
fn procedures_root(runbook: &Path) -> PathBuf {
    let canon = runbook.canonicalize().unwrap_or_else(|_| std::path::absolute(runbook).unwrap_or(runbook.into()));
    let dir = canon.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    dir.ancestors().find(|d| d.join(".git").exists()).map(Path::to_path_buf).unwrap_or(dir)
}

/// Loads and validates runbook text as if read from `path`.
pub fn load_str(path: &Path, text: &str, registry: &dyn Catalog) -> Result<Runbook, Diagnostics> {
    let mut l = Loader { files: Vec::new(), diags: Diagnostics::default(), registry };
    let partial = l.file(path.to_path_buf(), text.to_string(), &mut Vec::new());
    let rb = partial.and_then(|p| l.finish(p));
    l.diags.sort();
    match rb {
        Some(rb) if l.diags.is_empty() => Ok(rb),
        _ => Err(l.diags),
    }
}

impl Loader<'_> {
    fn err(&mut self, loc: &Loc, kind: DiagKind, msg: impl Into<String>) -> &mut Diagnostic {
        let d = self.files[loc.file].diag(kind, loc.span.clone(), msg);
        self.diags.push(d);
        let last = self.diags.0.len() - 1;
        &mut self.diags.0[last]
    }

    fn err_help(&mut self, loc: &Loc, kind: DiagKind, msg: impl Into<String>, help: Option<String>) {
        let d = self.err(loc, kind, msg);
        d.help = help;
    }

    fn loc(&self, file: usize, span: Range<usize>) -> Loc {
        Loc { file, span }
    }

    /// Parses one file, then the file it extends, and merges them (this file wins).
    fn file(&mut self, path: PathBuf, text: String, chain: &mut Vec<PathBuf>) -> Option<Partial> {
        let file = self.files.len();
        self.files.push(SourceFile::new(path.clone(), text));
        let src = self.files[file].text.clone();
        let root = match DeTable::parse(&src) {
            Ok(root) => root,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let msg = e.message().trim().to_string();
                let d = self.err(&Loc { file, span }, DiagKind::Syntax, format!("invalid TOML: {msg}"));
                if file > 0 {
                    // a file reached through `extends` is located, never quoted: it may not be a runbook at all
                    d.line_text.clear();
                    d.width = 0;
                }
                return None;
            }
        };
        let mut p = Partial::default();
        for (k, v) in root.get_ref() {
            let kloc = self.loc(file, k.span());
            match k.get_ref().as_ref() {
                "runbook" => self.runbook_section(file, v, &mut p),
                "target" => self.target_section(file, v, &mut p),
                "state" => self.state_section(file, v, &mut p),
                "notify" => self.notify_section(file, v, &mut p),
                "vars" => {
                    if let Some(t) = self.table(file, v, "[vars]") {
                        for (name, value) in t {
                            let loc = self.loc(file, value.span());
                            if let Some(json) = self.json(file, value) {
                                p.vars.push((name.get_ref().to_string(), L { v: json, loc }));
                            }
                        }
                    }
                }
                "step" => match v.get_ref() {
                    DeValue::Array(items) => {
                        for item in items.iter() {
                            if let Some(s) = self.step(file, item) {
                                p.steps.push(s);
                            }
                        }
                    }
                    _ => {
                        self.err(
                            &self.loc(file, v.span()),
                            DiagKind::WrongType,
                            "`step` must be an array of tables: write each step as [[step]]",
                        );
                    }
                },
                other => {
                    let help = suggest(other, SECTIONS);
                    self.err_help(
                        &kloc,
                        DiagKind::UnknownField,
                        format!(
                            "unknown section `{other}`; expected one of: runbook, target, state, notify, vars, step"
                        ),
                        help,
                    );
                }
            }
        }
        if let Some(ext) = p.extends.clone() {
            let base_path = path.parent().unwrap_or(Path::new(".")).join(&ext.v);
            let canon = base_path.canonicalize().unwrap_or(base_path.clone());
            chain.push(path.canonicalize().unwrap_or(path.clone()));
            if chain.contains(&canon) {
                self.err(
                    &ext.loc,
                    DiagKind::BadInclude,
                    format!("`extends` forms a loop back to {}", base_path.display()),
                );
                return Some(p);
            }
            if chain.len() > MAX_EXTENDS_DEPTH {
                self.err(
                    &ext.loc,
                    DiagKind::BadInclude,
                    format!("`extends` nests deeper than {MAX_EXTENDS_DEPTH} files"),
                );
                return Some(p);
            }
            // a file that is not a procedure is never read (and never quoted): `check` runs on other people's runbooks
            let root = procedures_root(&self.files[0].path);
            if base_path.extension().is_none_or(|e| e != "toml") {
                self.err(
                    &ext.loc,
                    DiagKind::BadInclude,
                    format!("`extends` must name a .toml runbook procedure, not {}", base_path.display()),
                );
                return Some(p);
            }
            if canon.exists() && !canon.starts_with(&root) {
                self.err_help(
                    &ext.loc,
                    DiagKind::BadInclude,
                    format!("`extends` reaches outside {}: {}", root.display(), base_path.display()),
                    Some("a runbook may extend procedures in its own repository (or directory) only".into()),
                );
                return Some(p);
            }
            let text = match read_capped(&base_path) {
                Ok(t) => t,
                Err(e) => {
                    let why = match e {
                        ReadError::Io(m) => m,
                        ReadError::Utf8 { .. } => "it is not UTF-8 text".into(),
                    };
                    self.err(&ext.loc, DiagKind::BadInclude, format!("cannot read {}: {why}", base_path.display()));
                    return Some(p);
                }
            };
            if let Some(why) = not_a_procedure(&text) {
                self.err(
                    &ext.loc,
                    DiagKind::BadInclude,
                    format!("`extends`: {} is not a runbook procedure ({why})", base_path.display()),
                );
                return Some(p);
            }
            let base = self.file(base_path, text, chain);
            chain.pop();
            if let Some(base) = base {
                p = merge(base, p);
            }
        }
        Some(p)
    }

    fn table<'a, 'i>(&mut self, file: usize, v: &'a Item<'i>, what: &str) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                let msg = format!("{what} must be a table, found {}", other.type_str());
                self.err(&self.loc(file, v.span()), DiagKind::WrongType, msg);
                None
            }
        }
    }

    fn string(&mut self, file: usize, v: &Item<'_>, field: &str) -> Option<L<String>> {
        let loc = self.loc(file, v.span());
        match v.get_ref() {
            DeValue::String(s) => Some(L { v: s.to_string(), loc }),
            other => {
                self.err(&loc, DiagKind::WrongType, format!("`{field}` must be a string, found {}", other.type_str()));
                None
            }
        }
    }

    /// `mode`: `"recovery"` (a real failover) or `"drill"` (a recovery test); `Some(true)` for a drill.
    fn mode(&mut self, file: usize, v: &Item<'_>) -> Option<L<bool>> {
        let s = self.string(file, v, "mode")?;
        match s.v.as_str() {
            "drill" => Some(L { v: true, loc: s.loc }),
            "recovery" => Some(L { v: false, loc: s.loc }),
            other => {
                let help = suggest(other, &["drill", "recovery"]);
                self.err_help(
                    &s.loc,
                    DiagKind::BadValue,
                    format!(
                        "`mode` must be \"recovery\" (a real failover) or \"drill\" (a recovery test), not \"{other}\""
                    ),
                    help,
                );
                None
            }
        }
    }

    /// `drill_record`: a template with `{id}` (required) and `{record}` that makes a valid DNS name.
    fn drill_record(&mut self, file: usize, v: &Item<'_>) -> Option<L<String>> {
        let s = self.string(file, v, "drill_record")?;
        match crate::drill_names::template_error(&s.v) {
            None => Some(s),
            Some((range, msg, help)) => {
                let loc = self.sub_loc(&s.loc, &s.v, range);
                self.err_help(&loc, DiagKind::BadValue, msg, help);
                None
            }
        }
    }

    fn boolean(&mut self, file: usize, v: &Item<'_>, field: &str) -> Option<L<bool>> {
        let loc = self.loc(file, v.span());
        match v.get_ref() {
            DeValue::Boolean(b) => Some(L { v: *b, loc }),
            other => {
                self.err(
                    &loc,
                    DiagKind::WrongType,
                    format!("`{field}` must be true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn duration(&mut self, file: usize, v: &Item<'_>, field: &str) -> Option<L<Duration>> {
        let s = self.string(file, v, field)?;
        match parse_duration(&s.v) {
            Ok(d) => Some(L { v: d, loc: s.loc }),
            Err(e) => {
                self.err(&s.loc, DiagKind::BadDuration, format!("`{field}`: {e}"));
                None
            }
        }
    }

    fn name(&mut self, file: usize, v: &Item<'_>, field: &str) -> Option<L<String>> {
        let s = self.string(file, v, field)?;
        if !valid_name(&s.v) {
            self.err(&s.loc, DiagKind::BadName, format!("`{field}` \"{}\" must match [a-z0-9_-]+", s.v));
            return None;
        }
        Some(s)
    }

    fn region(&mut self, file: usize, v: &Item<'_>, field: &str) -> Option<L<String>> {
        let s = self.string(file, v, field)?;
        if !valid_region(&s.v) {
            self.err(
                &s.loc,
                DiagKind::BadRegion,
                format!("`{field}` \"{}\" is not an AWS region name such as \"us-west-2\"", s.v),
            );
            return None;
        }
        Some(s)
    }

    fn json(&mut self, file: usize, v: &Item<'_>) -> Option<Value> {
        Some(match v.get_ref() {
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Value::from(n),
                Err(_) => {
                    self.err(&self.loc(file, v.span()), DiagKind::BadValue, "integer out of range");
                    return None;
                }
            },
            DeValue::Float(f) => {
                match f.as_str().replace('_', "").parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                    Some(n) => Value::Number(n),
                    None => {
                        self.err(&self.loc(file, v.span()), DiagKind::BadValue, "floats must be finite numbers");
                        return None;
                    }
                }
            }
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::String(d.to_string()),
            DeValue::Array(a) => Value::Array(a.iter().map(|x| self.json(file, x)).collect::<Option<_>>()?),
            DeValue::Table(t) => {
                let mut m = Map::new();
                for (k, x) in t {
                    m.insert(k.get_ref().to_string(), self.json(file, x)?);
                }
                Value::Object(m)
            }
        })
    }

    fn unknown(&mut self, loc: Loc, section: &str, key: &str, allowed: &[&str]) {
        let help = suggest(key, allowed);
        self.err_help(
            &loc,
            DiagKind::UnknownField,
            format!("unknown field `{key}` in {section}; expected one of: {}", allowed.join(", ")),
            help,
        );
    }

    fn runbook_section(&mut self, file: usize, v: &Item<'_>, p: &mut Partial) {
        p.runbook_loc = Some(self.loc(file, v.span()));
        let Some(t) = self.table(file, v, "[runbook]") else {
            p.present.extend(RUNBOOK_FIELDS.iter().map(|f| format!("runbook.{f}")));
            return;
        };
        for (k, v) in t {
            let key = k.get_ref().as_ref();
            p.present.insert(format!("runbook.{key}"));
            match key {
                "name" => p.name = self.name(file, v, "runbook.name"),
                "title" => p.title = self.string(file, v, "title"),
                "app" => p.app = self.string(file, v, "app"),
                "rto" => p.rto = self.duration(file, v, "rto"),
                "rpo" => p.rpo = self.duration(file, v, "rpo"),
                "owner" => p.owner = self.string(file, v, "owner"),
                "description" => p.description = self.string(file, v, "description"),
                "extends" => p.extends = self.string(file, v, "extends"),
                "mode" => p.drill = self.mode(file, v),
                "drill_record" => p.drill_record = self.drill_record(file, v),
                _ => self.unknown(self.loc(file, k.span()), "[runbook]", key, RUNBOOK_FIELDS),
            }
        }
    }

    /// `[state]`: `shared = "s3://BUCKET/PREFIX"`, optional `region` and `kms_key`.
    fn state_section(&mut self, file: usize, v: &Item<'_>, p: &mut Partial) {
        let Some(t) = self.table(file, v, "[state]") else { return };
        for (k, v) in t {
            let key = k.get_ref().as_ref();
            match key {
                "shared" => {
                    if let Some(s) = self.string(file, v, "shared") {
                        match crate::util::parse_s3_url(&s.v) {
                            Ok(_) => p.state_shared = Some(s),
                            Err(e) => {
                                self.err(&s.loc, DiagKind::BadValue, format!("`shared` \"{}\": {e}", s.v));
                            }
                        }
                    }
                }
                "region" => p.state_region = self.region(file, v, "region"),
                "kms_key" => p.state_kms_key = self.string(file, v, "kms_key"),
                _ => self.unknown(self.loc(file, k.span()), "[state]", key, STATE_FIELDS),
            }
        }
    }

    /// `[notify]`: `webhooks = ["https://…", …]`, each an http(s) URL.
    fn notify_section(&mut self, file: usize, v: &Item<'_>, p: &mut Partial) {
        let Some(t) = self.table(file, v, "[notify]") else { return };
        for (k, v) in t {
            let key = k.get_ref().as_ref();
            match key {
                "webhooks" => {
                    let loc = self.loc(file, v.span());
                    let DeValue::Array(items) = v.get_ref() else {
                        self.err(&loc, DiagKind::WrongType, "`webhooks` must be an array of URLs");
                        continue;
                    };
                    let mut urls = Vec::new();
                    for item in items {
                        let Some(s) = self.string(file, item, "webhooks") else { continue };
                        match crate::notify::check_url(&s.v) {
                            Ok(()) => urls.push(s.v),
                            Err(e) => {
                                self.err(&s.loc, DiagKind::BadValue, format!("`webhooks`: {e}"));
                            }
                        }
                    }
                    p.notify = Some(L { v: urls, loc });
                }
                _ => self.unknown(self.loc(file, k.span()), "[notify]", key, NOTIFY_FIELDS),
            }
        }
    }

    fn target_section(&mut self, file: usize, v: &Item<'_>, p: &mut Partial) {
        p.target_loc = Some(self.loc(file, v.span()));
        let Some(t) = self.table(file, v, "[target]") else {
            p.present.extend(TARGET_FIELDS.iter().map(|f| format!("target.{f}")));
            return;
        };
        for (k, v) in t {
            let key = k.get_ref().as_ref();
            p.present.insert(format!("target.{key}"));
            match key {
                "backend" => {
                    if let Some(s) = self.string(file, v, "backend") {
                        match s.v.as_str() {
                            "aws" => p.backend = Some(L { v: Backend::Aws, loc: s.loc }),
                            "sim" => p.backend = Some(L { v: Backend::Sim, loc: s.loc }),
                            other => {
                                self.err(
                                    &s.loc,
                                    DiagKind::BadValue,
                                    format!("`backend` \"{other}\" must be \"aws\" or \"sim\""),
                                );
                            }
                        }
                    }
                }
                "account" => {
                    if let Some(s) = self.string(file, v, "account") {
                        if s.v.len() == 12 && s.v.bytes().all(|b| b.is_ascii_digit()) {
                            p.account = Some(s);
                        } else {
                            self.err(
                                &s.loc,
                                DiagKind::BadValue,
                                format!("`account` \"{}\" must be a 12-digit AWS account id", s.v),
                            );
                        }
                    }
                }
                "primary" => p.primary = self.region(file, v, "primary"),
                "secondary" => p.secondary = self.region(file, v, "secondary"),
                _ => self.unknown(self.loc(file, k.span()), "[target]", key, TARGET_FIELDS),
            }
        }
    }

    fn step(&mut self, file: usize, item: &Item<'_>) -> Option<PStep> {
        let loc = self.loc(file, item.span());
        let t = self.table(file, item, "[[step]]")?;
        let mut s = PStep {
            loc,
            id: None,
            title: None,
            action: None,
            needs: Vec::new(),
            with: Vec::new(),
            timeout: None,
            retries: None,
            on_failure: None,
            confirm: None,
            expected: None,
            doc: None,
            present: HashSet::new(),
        };
        for (k, v) in t {
            let key = k.get_ref().as_ref();
            s.present.insert(key.to_string());
            match key {
                "id" => s.id = self.name(file, v, "id"),
                "title" => s.title = self.string(file, v, "title"),
                "action" => s.action = self.string(file, v, "action"),
                "doc" => s.doc = self.string(file, v, "doc"),
                "timeout" => s.timeout = self.duration(file, v, "timeout"),
                "expected" => s.expected = self.duration(file, v, "expected"),
                "confirm" => s.confirm = self.boolean(file, v, "confirm"),
                "retries" => {
                    let l = self.loc(file, v.span());
                    match v.get_ref() {
                        DeValue::Integer(i) => match i.as_str().parse::<u32>() {
                            Ok(n) if i.radix() == 10 && n <= 100 => s.retries = Some(L { v: n, loc: l }),
                            _ => {
                                self.err(&l, DiagKind::BadValue, "`retries` must be a whole number from 0 to 100");
                            }
                        },
                        other => {
                            self.err(
                                &l,
                                DiagKind::WrongType,
                                format!("`retries` must be an integer, found {}", other.type_str()),
                            );
                        }
                    }
                }
                "on_failure" => {
                    if let Some(x) = self.string(file, v, "on_failure") {
                        let pol = match x.v.as_str() {
                            "abort" => Some(OnFailure::Abort),
                            "continue" => Some(OnFailure::Continue),
                            "pause" => Some(OnFailure::Pause),
                            _ => None,
                        };
                        match pol {
                            Some(pol) => s.on_failure = Some(L { v: pol, loc: x.loc }),
                            None => {
                                self.err(
                                    &x.loc,
                                    DiagKind::BadValue,
                                    format!("`on_failure` \"{}\" must be one of: abort, continue, pause", x.v),
                                );
                            }
                        }
                    }
                }
                "needs" => {
                    let l = self.loc(file, v.span());
                    match v.get_ref() {
                        DeValue::Array(a) => {
                            for x in a.iter() {
                                if let Some(n) = self.string(file, x, "needs") {
                                    s.needs.push(n);
                                }
                            }
                        }
                        DeValue::String(_) => {
                            self.err_help(
                                &l,
                                DiagKind::WrongType,
                                "`needs` must be a list of step ids",
                                Some("write needs = [\"step_id\"]".into()),
                            );
                        }
                        other => {
                            self.err(
                                &l,
                                DiagKind::WrongType,
                                format!("`needs` must be a list of step ids, found {}", other.type_str()),
                            );
                        }
                    }
                }
                "with" => {
                    if let Some(t) = self.table(file, v, "`with`") {
                        for (pk, pv) in t {
                            s.present.insert(format!("with.{}", pk.get_ref()));
                            let kl = self.loc(file, pk.span());
                            let vl = self.loc(file, pv.span());
                            if let Some(j) = self.json(file, pv) {
                                s.with.push((L { v: pk.get_ref().to_string(), loc: kl }, L { v: j, loc: vl }));
                            }
                        }
                    } else {
                        s.present.insert("with:not-a-table".into());
                    }
                }
                _ => self.unknown(self.loc(file, k.span()), "[[step]]", key, STEP_FIELDS),
            }
        }
        Some(s)
    }

    fn finish(&mut self, mut p: Partial) -> Option<Runbook> {
        let top = Loc { file: 0, span: 0..0 };
        let rb_loc = p.runbook_loc.clone().unwrap_or(top.clone());
        let tg_loc = p.target_loc.clone().unwrap_or(top.clone());
        if p.runbook_loc.is_none() {
            self.err(&top, DiagKind::MissingField, "missing [runbook] section (name, title, app, rto, rpo)");
        }
        if p.target_loc.is_none() {
            self.err(&top, DiagKind::MissingField, "missing [target] section (primary, secondary)");
        }
        let missing = |l: &mut Self, valid: bool, loc: &Loc, section: &str, field: &str| {
            let present = valid || p.present.contains(&format!("{}.{field}", section.trim_matches(['[', ']'])));
            if !present
                && (section != "[runbook]" || p.runbook_loc.is_some())
                && (section != "[target]" || p.target_loc.is_some())
            {
                l.err(loc, DiagKind::MissingField, format!("missing field `{field}` in {section}"));
            }
        };
        missing(self, p.name.is_some(), &rb_loc, "[runbook]", "name");
        missing(self, p.title.is_some(), &rb_loc, "[runbook]", "title");
        missing(self, p.app.is_some(), &rb_loc, "[runbook]", "app");
        missing(self, p.rto.is_some(), &rb_loc, "[runbook]", "rto");
        missing(self, p.rpo.is_some(), &rb_loc, "[runbook]", "rpo");
        missing(self, p.primary.is_some(), &tg_loc, "[target]", "primary");
        missing(self, p.secondary.is_some(), &tg_loc, "[target]", "secondary");
        if let (Some(a), Some(b)) = (&p.primary, &p.secondary)
            && a.v == b.v
        {
            self.err(&b.loc, DiagKind::BadRegion, format!("`secondary` must differ from `primary` (both are {})", a.v));
        }

        let mut vars = Map::new();
        for (k, v) in &p.vars {
            vars.insert(k.clone(), v.v.clone());
        }

        // steps: ids, actions, params
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut steps = Vec::new();
        for (i, s) in p.steps.iter().enumerate() {
            let id = match &s.id {
                Some(id) => {
                    if let Some(&first) = ids.get(&id.v) {
                        let first_loc = p.steps[first].id.as_ref().map(|x| x.loc.clone()).unwrap_or_default();
                        let (line, _) = self.files[first_loc.file].line_col(first_loc.span.start);
                        let path = self.files[first_loc.file].path.display().to_string();
                        self.err(
                            &id.loc,
                            DiagKind::DuplicateStep,
                            format!("duplicate step id `{}` (first defined at {path}:{line})", id.v),
                        );
                    } else {
                        ids.insert(id.v.clone(), i);
                    }
                    id.v.clone()
                }
                None => {
                    if !s.present.contains("id") {
                        self.err(&s.loc, DiagKind::MissingField, "missing field `id` in [[step]]");
                    }
                    String::new()
                }
            };
            if s.title.is_none() && !s.present.contains("title") {
                self.err(&s.loc, DiagKind::MissingField, format!("missing field `title` in step `{id}`"));
            }
            match &s.action {
                None if s.present.contains("action") => {}
                None => {
                    self.err(&s.loc, DiagKind::MissingField, format!("missing field `action` in step `{id}`"));
                }
                Some(a) => self.check_params(a, s),
            }
            steps.push(Step {
                id,
                title: s.title.as_ref().map(|t| t.v.clone()).unwrap_or_default(),
                action: s.action.as_ref().map(|t| t.v.clone()).unwrap_or_default(),
                needs: s.needs.iter().map(|n| n.v.clone()).collect(),
                with: s.with.iter().map(|(k, v)| (k.v.clone(), v.v.clone())).collect(),
                timeout: s.timeout.as_ref().map(|t| t.v),
                retries: s.retries.as_ref().map_or(0, |r| r.v),
                on_failure: s.on_failure.as_ref().map_or_else(OnFailure::default, |o| o.v),
                confirm: s.confirm.as_ref().is_some_and(|c| c.v),
                expected: s.expected.as_ref().map(|e| e.v),
                doc: s.doc.as_ref().map(|d| d.v.clone()),
                loc: s.id.as_ref().map(|i| i.loc.clone()).unwrap_or(s.loc.clone()),
            });
        }
        if steps.is_empty() && self.diags.is_empty() {
            self.err(&top, DiagKind::MissingField, "the runbook has no [[step]]");
        }

        // needs -> graph
        let mut deps = vec![Vec::new(); steps.len()];
        for (i, s) in p.steps.iter().enumerate() {
            let mut seen = HashSet::new();
            for n in &s.needs {
                match ids.get(&n.v) {
                    Some(&j) if j == i => {
                        self.err(&n.loc, DiagKind::Cycle, format!("step `{}` needs itself", n.v));
                    }
                    Some(&j) => {
                        if seen.insert(j) {
                            deps[i].push(j);
                        }
                    }
                    None => {
                        let all: Vec<&str> = ids.keys().map(String::as_str).collect();
                        let help = suggest(&n.v, &all);
                        self.err_help(
                            &n.loc,
                            DiagKind::UnknownNeed,
                            format!("`needs` names an unknown step `{}`", n.v),
                            help,
                        );
                    }
                }
            }
        }
        let dag = match Dag::new(deps) {
            Ok(d) => d,
            Err(cycle) => {
                let names: Vec<&str> = cycle.iter().map(|&i| steps[i].id.as_str()).collect();
                let at = cycle.first().copied().unwrap_or(0);
                let loc = p.steps[at]
                    .needs
                    .iter()
                    .find(|n| cycle.get(1).is_some_and(|&nx| steps[nx].id == n.v))
                    .map(|n| n.loc.clone())
                    .unwrap_or(steps[at].loc.clone());
                self.err(&loc, DiagKind::Cycle, format!("dependency cycle: {}", names.join(" needs ")));
                return None;
            }
        };

        let meta = Meta {
            name: p.name.map(|x| x.v).unwrap_or_default(),
            title: p.title.map(|x| x.v).unwrap_or_default(),
            app: p.app.map(|x| x.v).unwrap_or_default(),
            rto: p.rto.map_or(Duration::ZERO, |x| x.v),
            rpo: p.rpo.map_or(Duration::ZERO, |x| x.v),
            owner: p.owner.map(|x| x.v),
            description: p.description.map(|x| x.v),
            drill: p.drill.is_some_and(|x| x.v),
            drill_record: p.drill_record.map(|x| x.v),
            notify: p.notify.map(|x| x.v).unwrap_or_default(),
        };
        let target = Target {
            backend: p.backend.map_or(Backend::Aws, |x| x.v),
            account: p.account.map(|x| x.v),
            primary: p.primary.map(|x| x.v).unwrap_or_default(),
            secondary: p.secondary.map(|x| x.v).unwrap_or_default(),
        };

        // references, now that the graph is known
        for (name, v) in &p.vars {
            self.check_refs(
                &v.v,
                &v.loc,
                None,
                &ids,
                &p.steps,
                &dag,
                &vars,
                target.account.is_some(),
                &meta,
                Some(name),
            );
        }
        for (i, s) in p.steps.iter().enumerate() {
            for (_, v) in &s.with {
                self.check_refs(
                    &v.v,
                    &v.loc,
                    Some(i),
                    &ids,
                    &p.steps,
                    &dag,
                    &vars,
                    target.account.is_some(),
                    &meta,
                    None,
                );
            }
        }

        self.check_var_kinds(&p.steps, &p.vars, &vars);

        let state = p.state_shared.take().map(|s| super::StateSection {
            shared: s.v,
            region: p.state_region.take().map(|x| x.v),
            kms_key: p.state_kms_key.take().map(|x| x.v),
        });
        Some(Runbook { files: std::mem::take(&mut self.files), meta, target, state, vars, steps, dag })
    }

    /// Values known before the run through `${vars.*}` must fit the parameter they reach; reported at the
    /// variable (or, for a value built from several, at the parameter).
    fn check_var_kinds(&mut self, psteps: &[PStep], pvars: &[(String, L<Value>)], vars: &Map<String, Value>) {
        let registry = self.registry;
        let withs: Vec<Vec<(String, Value)>> =
            psteps.iter().map(|s| s.with.iter().map(|(k, v)| (k.v.clone(), v.v.clone())).collect()).collect();
        let actions: Vec<String> =
            psteps.iter().map(|s| s.action.as_ref().map(|a| a.v.clone()).unwrap_or_default()).collect();
        let kind_fns: Vec<super::kinds::KindOf> = actions
            .iter()
            .map(|a| {
                let spec = registry.spec(a);
                Box::new(move |name: &str| spec.and_then(|s| s.param(name)).map(|ps| ps.kind)) as super::kinds::KindOf
            })
            .collect();
        let steps = (0..psteps.len()).map(|i| (actions[i].as_str(), withs[i].as_slice(), kind_fns[i].as_ref()));
        for problem in super::kinds::var_problems(vars, steps) {
            let s = &psteps[problem.step];
            let kind = registry.spec(&actions[problem.step]).and_then(|sp| sp.param(&problem.param)).map(|ps| ps.kind);
            let class = match kind {
                Some(ParamKind::Duration) => DiagKind::BadDuration,
                Some(ParamKind::Region) => DiagKind::BadRegion,
                Some(ParamKind::Int | ParamKind::Bool) => DiagKind::WrongType,
                _ => DiagKind::BadValue,
            };
            let step = s.id.as_ref().map_or("?", |i| i.v.as_str());
            let msg = format!("{} (step `{step}`)", problem.message);
            let var_loc =
                problem.var.as_ref().and_then(|n| pvars.iter().find(|(k, _)| k == n)).map(|(_, v)| v.loc.clone());
            let loc = var_loc
                .or_else(|| s.with.iter().find(|(k, _)| k.v == problem.param).map(|(_, v)| v.loc.clone()))
                .unwrap_or(s.loc.clone());
            self.err(&loc, class, msg);
        }
    }

    fn check_params(&mut self, action: &L<String>, s: &PStep) {
        let Some(spec) = self.registry.spec(&action.v) else {
            let help = suggest(&action.v, &self.registry.names())
                .or_else(|| Some("`drconsole actions` lists every action".into()));
            self.err_help(&action.loc, DiagKind::UnknownAction, format!("unknown action `{}`", action.v), help);
            return;
        };
        let with_loc = s.with.first().map(|(k, _)| k.loc.clone()).unwrap_or(s.loc.clone());
        // `with` that is not a table, or a parameter with a bad value, was reported already: not missing too
        let with_is_bad = s.present.contains("with:not-a-table");
        for req in spec.params.iter().filter(|p| p.required) {
            let given =
                s.with.iter().any(|(k, _)| k.v == req.name) || s.present.contains(&format!("with.{}", req.name));
            if !given && !with_is_bad {
                let msg = format!(
                    "action `{}` needs parameter `{}` ({}) in [step.with]",
                    spec.name,
                    req.name,
                    req.kind.describe()
                );
                self.err(&with_loc, DiagKind::MissingParam, msg);
            }
        }
        let names: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
        for (k, v) in &s.with {
            let Some(ps) = spec.param(&k.v) else {
                let help = suggest(&k.v, &names);
                let msg = format!(
                    "action `{}` has no parameter `{}`; its parameters are: {}",
                    spec.name,
                    k.v,
                    names.join(", ")
                );
                self.err_help(&k.loc, DiagKind::UnknownParam, msg, help);
                continue;
            };
            if let Some(why) = super::kinds::mismatch(ps.kind, &v.v, false) {
                // a value of the right type that is still wrong is reported like the same mistake in a field
                let class = match (ps.kind, &v.v) {
                    (ParamKind::Duration, Value::String(_)) => DiagKind::BadDuration,
                    (ParamKind::Region, Value::String(_)) => DiagKind::BadRegion,
                    (ParamKind::Time | ParamKind::Url | ParamKind::OneOf(_), Value::String(_)) => DiagKind::BadValue,
                    (ParamKind::Port, Value::Number(_)) => DiagKind::BadValue,
                    _ => DiagKind::WrongType,
                };
                self.err(
                    &v.loc,
                    class,
                    format!("parameter `{}` of `{}` must be {}{why}", k.v, spec.name, ps.kind.describe()),
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_refs(
        &mut self,
        v: &Value,
        loc: &Loc,
        step: Option<usize>,
        ids: &HashMap<String, usize>,
        psteps: &[PStep],
        dag: &Dag,
        vars: &Map<String, Value>,
        has_account: bool,
        meta: &Meta,
        in_var: Option<&str>,
    ) {
        let strings = strings_in(v);
        for s in strings {
            let segs = match interp::parse(s) {
                Ok(segs) => segs,
                Err(e) => {
                    let l = self.sub_loc(loc, s, e.range);
                    self.err(&l, DiagKind::BadReference, e.message);
                    continue;
                }
            };
            for seg in segs {
                let Segment::Ref(path, range) = seg else { continue };
                let problem = self.ref_problem(&path, step, ids, psteps, dag, vars, has_account, meta, in_var);
                if let Some((msg, help)) = problem {
                    let l = self.sub_loc(loc, s, range);
                    self.err_help(&l, DiagKind::BadReference, format!("`${{{}}}`: {msg}", path.join(".")), help);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ref_problem(
        &self,
        path: &[String],
        step: Option<usize>,
        ids: &HashMap<String, usize>,
        psteps: &[PStep],
        dag: &Dag,
        vars: &Map<String, Value>,
        has_account: bool,
        meta: &Meta,
        in_var: Option<&str>,
    ) -> Option<(String, Option<String>)> {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        match p.as_slice() {
            ["vars", name] => {
                if in_var.is_some() {
                    return Some(("a variable cannot refer to another variable".into(), None));
                }
                if vars.contains_key(*name) {
                    None
                } else {
                    let all: Vec<&str> = vars.keys().map(String::as_str).collect();
                    Some((format!("no variable `{name}` in [vars]"), suggest(name, &all)))
                }
            }
            ["target", "primary" | "secondary" | "backend"] => None,
            ["target", "account"] => (!has_account).then(|| ("[target] sets no `account`".into(), None)),
            ["target", f] => Some((
                format!("[target] has no field `{f}`"),
                Some("use primary, secondary, account or backend".into()),
            )),
            ["runbook", f] if RUNBOOK_REFS.contains(f) => {
                let unset =
                    (*f == "owner" && meta.owner.is_none()) || (*f == "description" && meta.description.is_none());
                unset.then(|| (format!("[runbook] sets no `{f}`"), None))
            }
            ["runbook", f] => Some((format!("[runbook] has no field `{f}`"), suggest(f, RUNBOOK_REFS))),
            ["run", "id" | "incident_start"] => None,
            ["run", f] => {
                Some((format!("unknown run value `{f}`"), Some("use ${run.id} or ${run.incident_start}".into())))
            }
            ["steps", id, output] => {
                if in_var.is_some() {
                    return Some((
                        "variables cannot refer to step outputs; use the reference in the step's [step.with]".into(),
                        None,
                    ));
                }
                let Some(&j) = ids.get(*id) else {
                    let all: Vec<&str> = ids.keys().map(String::as_str).collect();
                    return Some((format!("no step `{id}`"), suggest(id, &all)));
                };
                let i = step?;
                if !dag.is_upstream(j, i) {
                    return Some((
                        format!("step `{id}` is not upstream of this step, so its outputs may not exist yet"),
                        Some(format!("add \"{id}\" to this step's `needs`")),
                    ));
                }
                let action = psteps[j].action.as_ref()?;
                let spec = self.registry.spec(&action.v)?;
                if spec.has_output(output) {
                    None
                } else {
                    let outs: Vec<&str> = spec.outputs.iter().map(|o| o.name).collect();
                    let list = if outs.is_empty() { "none".to_string() } else { outs.join(", ") };
                    Some((
                        format!(
                            "action `{}` (step `{id}`) has no output `{output}`; its outputs are: {list}",
                            spec.name
                        ),
                        suggest(output, &outs),
                    ))
                }
            }
            ["steps", ..] => Some(("step references look like ${steps.ID.OUTPUT}".into(), None)),
            [first, ..] => Some((
                format!("unknown namespace `{first}`"),
                Some("references start with vars., target., runbook., steps. or run.".into()),
            )),
            [] => Some(("empty reference".into(), None)),
        }
    }

    /// The location of `range` inside the string value at `loc`, when the source spells the string plainly.
    fn sub_loc(&self, loc: &Loc, s: &str, range: Range<usize>) -> Loc {
        let text = &self.files[loc.file].text;
        let raw = text.get(loc.span.clone()).unwrap_or("");
        // `raw` includes the quotes; find the string's content verbatim (no escapes) inside it
        if let Some(off) = raw.find(s)
            && !s.is_empty()
        {
            let start = loc.span.start + off + range.start;
            return Loc { file: loc.file, span: start..loc.span.start + off + range.end };
        }
        loc.clone()
    }
}

/// Why a file named by `extends` is not a runbook procedure, judged without showing any of its text: its
/// top-level keys must be runbook sections.
fn not_a_procedure(text: &str) -> Option<String> {
    // a .toml file of the runbook's own repository with a syntax error is most likely a procedure being edited:
    // its error is shown as for any runbook
    let Ok(root) = DeTable::parse(text) else { return None };
    let sections = ["runbook", "target", "vars", "step"];
    let foreign = root.get_ref().keys().filter(|k| !sections.contains(&k.get_ref().as_ref())).count();
    (foreign > 0)
        .then(|| format!("{foreign} top-level key(s) that are not runbook sections: runbook, target, vars, step"))
}

/// Every string inside a JSON value.
fn strings_in(v: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

/// Merges a base file's contribution under a child's: the child's fields win, vars merge by name, steps append.
fn merge(base: Partial, child: Partial) -> Partial {
    let mut vars = base.vars;
    for (k, v) in child.vars {
        vars.retain(|(bk, _)| *bk != k);
        vars.push((k, v));
    }
    let mut steps = base.steps;
    steps.extend(child.steps);
    Partial {
        runbook_loc: child.runbook_loc.or(base.runbook_loc),
        name: child.name.or(base.name),
        title: child.title.or(base.title),
        app: child.app.or(base.app),
        rto: child.rto.or(base.rto),
        rpo: child.rpo.or(base.rpo),
        owner: child.owner.or(base.owner),
        description: child.description.or(base.description),
        drill: child.drill.or(base.drill),
        drill_record: child.drill_record.or(base.drill_record),
        extends: child.extends,
        backend: child.backend.or(base.backend),
        account: child.account.or(base.account),
        primary: child.primary.or(base.primary),
        secondary: child.secondary.or(base.secondary),
        target_loc: child.target_loc.or(base.target_loc),
        state_shared: child.state_shared.or(base.state_shared),
        state_region: child.state_region.or(base.state_region),
        state_kms_key: child.state_kms_key.or(base.state_kms_key),
        notify: child.notify.or(base.notify),
        vars,
        steps,
        present: base.present.union(&child.present).cloned().collect(),
    }
}

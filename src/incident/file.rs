//! The incident file (`runbooks/incidents/*.toml`): which runbooks run together as one incident.
//!
//! ```toml
//! [incident]
//! name = "us-east-1-outage"              # [a-z0-9_-]+
//! title = "us-east-1 is down: fail every application over to us-west-2"
//! runbooks = ["../cross-sell.toml", "../agent-payment.toml"]   # relative to this file
//! priority = ["agent-payment"]           # optional: these applications first (most urgent first)
//!
//! [limits]                               # optional: the API rate limits (see cloud::limit)
//! limiter = true                         # false: calls go out unpaced (to measure throttling)
//! "ec2.mutating" = { burst = 100, rate = 10 }   # an account with raised limits
//! ```
//!
//! Rules: unknown fields are errors with file:line:col, as in runbooks; every runbook named must exist (checked
//! when it is loaded, by the caller); nothing here touches a cloud.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::cloud::limit::{Limit, Limits};
use crate::runbook::{DiagKind, Diagnostic, Diagnostics, SourceFile};

/// A parsed incident file: the runbooks are paths, resolved against the file's directory.
#[derive(Debug, Clone)]
pub struct IncidentFile {
    pub path: PathBuf,
    pub name: String,
    pub title: String,
    /// Resolved runbook paths, in the file's order, each with the span of its entry (for diagnostics).
    pub runbooks: Vec<(PathBuf, Range<usize>)>,
    /// Application names said to go first, most urgent first.
    pub priority: Vec<(String, Range<usize>)>,
    pub limits: Limits,
    /// `[notify] webhooks`: where every application's notifications go (`crate::notify`).
    pub notify: Vec<String>,
    pub source: SourceFile,
}

/// What `drconsole schema incident` describes: the very type the loader reads.
pub(crate) type IncidentSchema = Doc;

/// An incident file (`runbooks/incidents/*.toml`).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Doc {
    incident: Table,
    /// Shared API rate limits per class (`ec2-read = { burst = 20, rate = 10 }`)
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, LimitEntry>")]
    limits: std::collections::BTreeMap<String, Spanned<toml::Value>>,
    /// Where notifications go (every application's), besides `--notify` and DRCONSOLE_NOTIFY
    #[serde(default)]
    notify: Option<NotifyTable>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NotifyTable {
    /// Webhook URLs (http or https) that receive a JSON POST for each notification
    #[schemars(with = "Vec<String>")]
    webhooks: Vec<Spanned<String>>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Table {
    /// The incident's name, [a-z0-9_-]+
    #[schemars(with = "String", regex(pattern = r"^[a-z0-9_-]+$"))]
    name: Spanned<String>,
    title: String,
    /// The runbooks of its applications, relative to this file
    #[schemars(with = "Vec<String>", length(min = 1))]
    runbooks: Spanned<Vec<Spanned<String>>>,
    /// Applications that go first, most urgent first
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    priority: Vec<Spanned<String>>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct LimitEntry {
    burst: u32,
    rate: f64,
}

/// Whether a TOML text is an incident file (it has an `[incident]` table) rather than a runbook.
pub fn is_incident_text(text: &str) -> bool {
    text.parse::<toml::Table>().is_ok_and(|t| t.contains_key("incident"))
}

/// Whether the file at `path` is an incident file (unreadable files are not: the runbook loader explains them).
pub fn is_incident_file(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| is_incident_text(&t))
}

/// Reads and parses an incident file; the runbooks it names are not loaded here.
pub fn load(path: &Path) -> Result<IncidentFile, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic::file(path, DiagKind::Syntax, format!("cannot read incident file: {e}"))])
    })?;
    parse(path, &text)
}

/// Parses an incident file's text.
pub fn parse(path: &Path, text: &str) -> Result<IncidentFile, Diagnostics> {
    let source = SourceFile::new(path, text);
    let doc: Doc = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().trim().to_string();
        let kind = if msg.starts_with("unknown field") {
            DiagKind::UnknownField
        } else if msg.starts_with("missing field") {
            DiagKind::MissingField
        } else {
            DiagKind::Syntax
        };
        Diagnostics(vec![source.diag(kind, span, format!("incident file: {msg}"))])
    })?;
    let mut diags = Vec::new();
    let t = doc.incident;
    let name = t.name.get_ref().clone();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        diags.push(source.diag(
            DiagKind::BadName,
            t.name.span(),
            format!("incident name `{name}`: use lowercase letters, digits, - and _"),
        ));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let runbooks_span = t.runbooks.span();
    let entries = t.runbooks.into_inner();
    if entries.is_empty() {
        diags.push(source.diag(DiagKind::BadValue, runbooks_span, "an incident needs at least one runbook"));
    }
    let mut runbooks: Vec<(PathBuf, Range<usize>)> = Vec::new();
    for e in entries {
        let span = e.span();
        let p = base.join(e.get_ref());
        if runbooks.iter().any(|(q, _)| q == &p) {
            diags.push(source.diag(DiagKind::BadValue, span, format!("runbook `{}` is named twice", e.get_ref())));
            continue;
        }
        runbooks.push((p, span));
    }
    let priority = t.priority.into_iter().map(|p| (p.get_ref().clone(), p.span())).collect();
    let mut limits = Limits::aws_defaults();
    for (class, entry) in doc.limits {
        let span = entry.span();
        let value = entry.into_inner();
        if class == "limiter" {
            match value.as_bool() {
                Some(on) => limits.limiter = on,
                None => diags.push(source.diag(DiagKind::WrongType, span, "[limits] limiter: true or false")),
            }
            continue;
        }
        if !limits.classes.contains_key(class.as_str()) {
            let known: Vec<&str> = limits.classes.keys().map(String::as_str).collect();
            diags.push(source.diag(
                DiagKind::UnknownField,
                span,
                format!("[limits]: unknown API class `{class}` (known: limiter, {})", known.join(", ")),
            ));
            continue;
        }
        match value.try_into::<LimitEntry>() {
            Ok(LimitEntry { burst, rate }) if burst >= 1 && rate.is_finite() && rate > 0.0 => {
                limits.classes.insert(class, Limit { burst, rate });
            }
            Ok(_) => diags.push(source.diag(
                DiagKind::BadValue,
                span,
                format!("[limits] {class}: burst must be at least 1 and rate a number above 0"),
            )),
            Err(e) => diags.push(source.diag(
                DiagKind::WrongType,
                span,
                format!("[limits] {class}: write {{ burst = N, rate = PER_SECOND }} ({})", e.message().trim()),
            )),
        }
    }
    let mut notify = Vec::new();
    for w in doc.notify.map(|n| n.webhooks).unwrap_or_default() {
        let span = w.span();
        let url = w.into_inner();
        match crate::notify::check_url(&url) {
            Ok(()) => notify.push(url),
            Err(e) => diags.push(source.diag(DiagKind::BadValue, span, format!("[notify] webhooks: {e}"))),
        }
    }
    if !diags.is_empty() {
        return Err(Diagnostics(diags));
    }
    Ok(IncidentFile { path: path.to_path_buf(), name, title: t.title, runbooks, priority, limits, notify, source })
}

impl IncidentFile {
    /// A diagnostic at a span of this file.
    pub fn diag(&self, kind: DiagKind, span: Range<usize>, msg: impl Into<String>) -> Diagnostic {
        self.source.diag(kind, span, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runbooks_relative_to_the_file_and_the_limits() {
        let f = parse(
            Path::new("runbooks/incidents/x.toml"),
            "[incident]\nname = \"x\"\ntitle = \"X\"\nrunbooks = [\"../a.toml\", \"../b.toml\"]\n\
             priority = [\"b\"]\n[limits]\nlimiter = false\n\"ec2.mutating\" = { burst = 100, rate = 10 }\n",
        )
        .unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(f.runbooks[0].0, Path::new("runbooks/incidents/../a.toml"));
        assert_eq!(f.priority[0].0, "b");
        assert!(!f.limits.limiter);
        assert_eq!(f.limits.classes["ec2.mutating"].burst, 100);
        assert_eq!(f.limits.classes["rds"].burst, 300);
    }

    #[test]
    fn an_unknown_field_is_an_error_with_its_line_and_column() {
        let d = parse(
            Path::new("i.toml"),
            "[incident]\nname = \"x\"\ntitle = \"X\"\nrunbooks = [\"a.toml\"]\nrunbok = 1\n",
        )
        .err()
        .unwrap_or_else(|| panic!("accepted"));
        assert_eq!((d.0[0].line, d.0[0].col, d.0[0].kind), (5, 1, DiagKind::UnknownField), "{d}");
        let d = parse(Path::new("i.toml"), "[incident]\nname = \"X y\"\ntitle = \"X\"\nrunbooks = []\n")
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(d.0.len(), 2, "{d}");
        assert_eq!((d.0[0].line, d.0[0].kind), (2, DiagKind::BadName));
        let d = parse(
            Path::new("i.toml"),
            "[incident]\nname = \"x\"\ntitle = \"X\"\nrunbooks = [\"a.toml\"]\n[limits]\n\"ec2.fast\" = { burst = 1, rate = 1 }\n",
        )
        .err()
        .unwrap_or_else(|| panic!("accepted"));
        assert_eq!((d.0[0].line, d.0[0].kind), (6, DiagKind::UnknownField), "{d}");
    }

    #[test]
    fn a_runbook_is_not_an_incident_file() {
        assert!(!is_incident_text("[runbook]\nname = \"x\"\n"));
        assert!(is_incident_text("[incident]\nname = \"x\"\n"));
    }
}

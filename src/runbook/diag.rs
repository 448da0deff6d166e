//! Diagnostics for runbook documents: a message, a class and a location shown as `file:line:col`, the offending
//! line and a caret, in the manner of rustc.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A runbook source file and an index of its line starts, to turn byte offsets into line:col.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { path: path.into(), text, line_starts }
    }

    pub fn load(path: &Path) -> std::io::Result<Self> {
        Ok(Self::new(path, std::fs::read_to_string(path)?))
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).saturating_sub(1);
        let start = self.line_starts[line];
        let col = self.text.get(start..offset).map_or(0, |s| s.chars().count());
        (line + 1, col + 1)
    }

    fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self.line_starts.get(line).copied().unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    pub fn diag(&self, kind: DiagKind, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, col) = self.line_col(span.start);
        let text = self.line_text(line).to_string();
        // the caret covers the span on its first line
        let (end_line, end_col) = self.line_col(span.end.max(span.start));
        let width = if end_line == line {
            end_col.saturating_sub(col).max(1)
        } else {
            text.chars().count().saturating_sub(col - 1).max(1)
        };
        Diagnostic {
            path: self.path.clone(),
            line,
            col,
            width,
            line_text: text,
            kind,
            message: message.into(),
            help: None,
        }
    }
}

/// The class of a diagnostic: stable names, used by tests and by `--json` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiagKind {
    Syntax,
    UnknownField,
    MissingField,
    WrongType,
    BadValue,
    BadName,
    DuplicateStep,
    UnknownAction,
    UnknownParam,
    MissingParam,
    UnknownNeed,
    Cycle,
    BadReference,
    BadDuration,
    BadRegion,
    BadInclude,
}

impl DiagKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiagKind::Syntax => "syntax",
            DiagKind::UnknownField => "unknown-field",
            DiagKind::MissingField => "missing-field",
            DiagKind::WrongType => "wrong-type",
            DiagKind::BadValue => "bad-value",
            DiagKind::BadName => "bad-name",
            DiagKind::DuplicateStep => "duplicate-step",
            DiagKind::UnknownAction => "unknown-action",
            DiagKind::UnknownParam => "unknown-param",
            DiagKind::MissingParam => "missing-param",
            DiagKind::UnknownNeed => "unknown-need",
            DiagKind::Cycle => "cycle",
            DiagKind::BadReference => "bad-reference",
            DiagKind::BadDuration => "bad-duration",
            DiagKind::BadRegion => "bad-region",
            DiagKind::BadInclude => "bad-include",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    #[serde(skip)]
    pub width: usize,
    #[serde(skip)]
    pub line_text: String,
    pub kind: DiagKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// A diagnostic about a whole file (it could not be read).
    pub fn file(path: &Path, kind: DiagKind, message: impl Into<String>) -> Self {
        Diagnostic {
            path: path.to_path_buf(),
            line: 1,
            col: 1,
            width: 0,
            line_text: String::new(),
            kind,
            message: message.into(),
            help: None,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error[{}]: {}", self.kind.as_str(), self.message)?;
        write!(f, "  --> {}:{}:{}", self.path.display(), self.line, self.col)?;
        if self.width > 0 {
            let gutter = self.line.to_string().len();
            let pad = " ".repeat(gutter);
            // tabs in the line would shift the caret; show them as single spaces
            let text = self.line_text.replace('\t', " ");
            let lead = " ".repeat(self.col.saturating_sub(1));
            write!(f, "\n{pad} |\n{} | {text}\n{pad} | {lead}{}", self.line, "^".repeat(self.width))?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// All diagnostics of a `check`, in file order.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| (&a.path, a.line, a.col).cmp(&(&b.path, b.line, b.col)));
        self.0.dedup();
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let s = SourceFile::new("x.toml", "a = 1\nbb = 2\n");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(6), (2, 1));
        assert_eq!(s.line_col(9), (2, 4));
    }

    #[test]
    fn renders_caret_under_span() {
        let s = SourceFile::new("x.toml", "[runbook]\ntimout = 3\n");
        let d = s.diag(DiagKind::UnknownField, 10..16, "unknown field `timout`");
        let text = d.to_string();
        assert!(text.contains("x.toml:2:1"), "{text}");
        assert!(text.contains("2 | timout = 3\n  | ^^^^^^"), "{text}");
    }
}

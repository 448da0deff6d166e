//! The runbook document: the TOML model, validation (`check`), `${...}` interpolation and the step graph.

pub mod catalog;
pub mod dag;
pub mod diag;
pub mod interp;
pub mod kinds;
mod load;
pub(crate) use load::{NOTIFY_FIELDS, RUNBOOK_FIELDS, SECTIONS, STATE_FIELDS, STEP_FIELDS, TARGET_FIELDS};

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

pub use catalog::{ActionSpec, Catalog, ParamKind};
pub use dag::Dag;
pub use diag::{DiagKind, Diagnostic, Diagnostics, SourceFile};
pub use load::{load, load_str};

/// Where a value came from: a file of the runbook (0 = the runbook itself, then files it `extends`) and a byte span.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loc {
    pub file: usize,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Aws,
    Sim,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Aws => "aws",
            Backend::Sim => "sim",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    Abort,
    Continue,
    #[default]
    Pause,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Abort => "abort",
            OnFailure::Continue => "continue",
            OnFailure::Pause => "pause",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub name: String,
    pub title: String,
    pub app: String,
    #[serde(with = "crate::util::serde_secs")]
    pub rto: Duration,
    #[serde(with = "crate::util::serde_secs")]
    pub rpo: Duration,
    pub owner: Option<String>,
    pub description: Option<String>,
    /// A recovery test (`mode = "drill"` or `--drill`): see `crate::drill`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub drill: bool,
    /// `drill_record = "drill-{id}.{record}"`: the record a drill writes instead of the production one
    /// (`crate::drill_names::record_for`); without it, `drill-<short id>.<record>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill_record: Option<String>,
    /// `[notify] webhooks`: where notifications go (`crate::notify`). Never serialized: a webhook URL is a secret.
    #[serde(skip)]
    pub notify: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub backend: Backend,
    pub account: Option<String>,
    pub primary: String,
    pub secondary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub id: String,
    pub title: String,
    pub action: String,
    pub needs: Vec<String>,
    /// The action's parameters, uninterpolated (`${...}` still in place).
    pub with: Map<String, Value>,
    #[serde(with = "crate::util::serde_opt_secs")]
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub on_failure: OnFailure,
    pub confirm: bool,
    #[serde(with = "crate::util::serde_opt_secs")]
    pub expected: Option<Duration>,
    pub doc: Option<String>,
    #[serde(skip)]
    pub loc: Loc,
}

/// `[state]`: where the team's shared state lives (optional; `--shared-state` wins over it).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StateSection {
    /// `s3://BUCKET/PREFIX`
    pub shared: String,
    pub region: Option<String>,
    pub kms_key: Option<String>,
}

/// A validated runbook, ready to plan and run.
#[derive(Debug, Clone)]
pub struct Runbook {
    /// The runbook file first, then any files it extends.
    pub files: Vec<SourceFile>,
    pub meta: Meta,
    pub target: Target,
    /// `[state]`, if the runbook has one.
    pub state: Option<StateSection>,
    pub vars: Map<String, Value>,
    pub steps: Vec<Step>,
    pub dag: Dag,
}

impl Runbook {
    pub fn path(&self) -> &Path {
        &self.files[0].path
    }

    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// The step's expected duration: its own `expected`, else the action's default.
    pub fn expected(&self, catalog: &dyn Catalog, i: usize) -> Duration {
        let s = &self.steps[i];
        s.expected.or_else(|| catalog.spec(&s.action).map(ActionSpec::expected)).unwrap_or(Duration::from_secs(60))
    }

    /// sha256 over every file of the runbook, in order, as lowercase hex.
    pub fn sha256(&self) -> String {
        crate::util::sha256_hex(self.files.iter().map(|f| f.text.as_bytes()))
    }
}

/// Checks a runbook name or step id: `[a-z0-9_-]+`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks an AWS region name such as `us-east-1`, `eu-central-1` or `us-gov-west-1`.
pub fn valid_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.last().is_some_and(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for ok in ["us-east-1", "us-west-2", "eu-central-1", "us-gov-west-1", "ap-southeast-2"] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in ["us-east", "useast1", "US-EAST-1", "us-east-x", "u-east-1", "us--1"] {
            assert!(!valid_region(bad), "{bad}");
        }
    }
}

//! What an action declares about itself: its parameters, outputs, IAM permissions and expected duration.
//! `check` validates runbooks against these, `actions` lists them, `plan` and `iam-policy` are built from them.
//! The runbook loader sees actions only through the [`Catalog`] trait, so `runbook` does not depend on the action
//! implementations (the registry in `actions` implements it).

use serde::Serialize;

/// The type of a parameter, checked by `drconsole check` for literal values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    Str,
    Int,
    Bool,
    /// `90s`, `45m`, `2h`, `1h30m`
    Duration,
    /// RFC 3339 timestamp, e.g. `2026-11-21T03:00:00Z`
    Time,
    /// A list of strings
    StrList,
    /// A table of strings (e.g. tags)
    Table,
    /// An AWS region name
    Region,
}

impl ParamKind {
    pub fn describe(self) -> &'static str {
        match self {
            ParamKind::Str => "a string",
            ParamKind::Int => "an integer",
            ParamKind::Bool => "a boolean",
            ParamKind::Duration => "a duration such as \"90s\", \"45m\" or \"1h30m\"",
            ParamKind::Time => "an RFC 3339 time such as \"2026-11-21T03:00:00Z\"",
            ParamKind::StrList => "a list of strings",
            ParamKind::Table => "a table of strings",
            ParamKind::Region => "an AWS region such as \"us-west-2\"",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub required: bool,
    /// Never written to the journal, reports, logs or screen.
    pub secret: bool,
    pub doc: &'static str,
}

impl ParamSpec {
    pub const fn req(name: &'static str, kind: ParamKind, doc: &'static str) -> Self {
        Self { name, kind, required: true, secret: false, doc }
    }
    pub const fn opt(name: &'static str, kind: ParamKind, doc: &'static str) -> Self {
        Self { name, kind, required: false, secret: false, doc }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct OutputSpec {
    pub name: &'static str,
    pub doc: &'static str,
}

pub const fn out(name: &'static str, doc: &'static str) -> OutputSpec {
    OutputSpec { name, doc }
}

/// How an action touches the world; drives confirmations, plan text and the IAM policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Reads only (checks, listings, waits).
    ReadOnly,
    /// Creates or changes resources.
    Mutating,
    /// Moves traffic or replaces something in use (DNS cut-over, volume swap): the TUI asks for the resource name.
    Destructive,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub params: &'static [ParamSpec],
    pub outputs: &'static [OutputSpec],
    /// IAM actions needed, e.g. `rds:RestoreDBInstanceFromDBSnapshot`.
    pub iam: &'static [&'static str],
    /// Default duration estimate for the RTO projection, in seconds.
    pub expected_secs: u64,
    pub effect: Effect,
}

impl ActionSpec {
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
    pub fn has_output(&self, name: &str) -> bool {
        self.outputs.iter().any(|o| o.name == name)
    }
    pub fn expected(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.expected_secs)
    }
}

/// What the runbook loader needs to know of the action catalogue: each action's spec, by name.
pub trait Catalog {
    fn spec(&self, action: &str) -> Option<&'static ActionSpec>;
    /// Every action name (for "did you mean" suggestions).
    fn names(&self) -> Vec<&'static str>;
}

//! `drconsole preflight RUNBOOK...`: will this runbook work, and meet its RTO and RPO, before anyone presses go.
//!
//! Rules of this module:
//! - read-only by construction: the checks only ever hold a [`ReadOnlyCloud`], whose mutating methods refuse
//!   before anything is sent; the report counts any refused attempt (there should be none);
//! - one [`Finding`] per check: `ok`, `warn` or `fail`, the step, what was checked, what was found, what to do;
//!   a check that the cloud layer (or the emulator) cannot do is listed under [`Report::unchecked`] with why, and
//!   never reported `ok`;
//! - the verdict: `wrong-account` (exit 4) when the caller is not in the runbook's `target.account`, else
//!   `not-ready` (exit 1) on any `fail`, else `ready` (exit 0, warnings allowed).

mod checks;
pub mod command;
pub mod readonly;
pub mod render;

use serde::Serialize;

pub use readonly::{CODE_READ_ONLY, ReadOnlyCloud};

use crate::actions::Registry;
use crate::runbook::Runbook;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub status: Status,
    /// The step it is about (`-` for the runbook as a whole: account, RTO).
    pub step: String,
    /// What was checked: `VPC cross-sell-dr-vpc in us-west-2`.
    pub check: String,
    /// What was found.
    pub found: String,
    /// What to do about it (empty when ok).
    pub todo: String,
}

/// A precondition preflight could not check, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unchecked {
    pub step: String,
    pub what: String,
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Ready,
    NotReady,
    WrongAccount,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ready => "ready",
            Verdict::NotReady => "not ready",
            Verdict::WrongAccount => "wrong account",
        }
    }
    /// 0 ready (warnings allowed), 1 not ready, 4 wrong account (DESIGN.md).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Ready => crate::exit::RECOVERED,
            Verdict::NotReady => crate::exit::FAILED,
            Verdict::WrongAccount => crate::exit::REFUSED,
        }
    }
}

/// A preflight of one runbook.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub runbook: String,
    pub title: String,
    pub app: String,
    /// The runbook file.
    pub file: String,
    /// `sim` or `aws`.
    pub backend: String,
    pub account: Option<String>,
    pub identity: Option<String>,
    pub primary: String,
    pub secondary: String,
    pub rto_secs: u64,
    pub rpo_secs: u64,
    /// When the checks ran (the reference time for the RPO: "if the incident started now").
    pub checked_at: jiff::Timestamp,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    pub unchecked: Vec<Unchecked>,
    /// Mutating calls a check attempted and the read-only view refused (none is the design).
    pub refused_calls: std::collections::BTreeMap<String, u64>,
    /// The DR inventory established by the checks, when the primary answered every call made for it
    /// (`command::main` writes it; not part of the report).
    #[serde(skip)]
    pub inventory: Option<crate::inventory::Inventory>,
}

impl Report {
    pub fn count(&self, s: Status) -> usize {
        self.findings.iter().filter(|f| f.status == s).count()
    }
}

/// Checks every step's preconditions of `rb` against `cloud`, as if the incident started at `now`.
pub async fn run(rb: &Runbook, registry: &Registry, cloud: &ReadOnlyCloud, now: jiff::Timestamp) -> Report {
    run_with(rb, registry, cloud, now, Vec::new()).await
}

/// [`run`] with the runbook's past runs, whose P50/P90 the projected duration uses when there are enough
/// (`crate::forecast`).
pub async fn run_with(
    rb: &Runbook,
    registry: &Registry,
    cloud: &ReadOnlyCloud,
    now: jiff::Timestamp,
    history: Vec<crate::forecast::RunRecord>,
) -> Report {
    let mut c = checks::Checks::new(rb, registry, cloud, now);
    c.history = history;
    let wrong_account = c.account().await;
    if !wrong_account {
        c.steps().await;
    }
    c.rto();
    let (findings, unchecked, identity, account, inventory) = c.finish();
    let verdict = if wrong_account {
        Verdict::WrongAccount
    } else if findings.iter().any(|f| f.status == Status::Fail) {
        Verdict::NotReady
    } else {
        Verdict::Ready
    };
    Report {
        runbook: rb.meta.name.clone(),
        title: rb.meta.title.clone(),
        app: rb.meta.app.clone(),
        file: rb.path().display().to_string(),
        backend: cloud.backend().to_string(),
        account,
        identity,
        primary: rb.target.primary.clone(),
        secondary: rb.target.secondary.clone(),
        rto_secs: rb.meta.rto.as_secs(),
        rpo_secs: rb.meta.rpo.as_secs(),
        checked_at: now,
        verdict,
        findings,
        unchecked,
        refused_calls: cloud.refused(),
        inventory: if wrong_account { None } else { inventory },
    }
}

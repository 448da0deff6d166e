//! The journal's shared types and facts, a leaf of the journal: `meta.json` ([`Meta`], the run's settings and
//! sessions), who and where runs it (user, host), and how a run ended as read from its journal through the run
//! view. The session, the lock, the edge cases, the reports, shared state and listing read these here, so none of
//! them imports another for them.

use std::fs;
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::base::{JournalError, write_atomic};
use super::read::{JournalRead, read_journal};
use crate::engine::Outcome;
use crate::run::RunView;
use crate::runbook::{Backend, Runbook};

/// How the run was started, kept in meta.json so that a resumed run runs the same way.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RunSettings {
    /// `--var NAME=VALUE` overrides.
    #[serde(default)]
    pub vars: Vec<String>,
    #[serde(default)]
    pub sim: bool,
    pub speed: f64,
    pub seed: u64,
    pub max_parallel: usize,
    #[serde(default)]
    pub recovery_point: Option<String>,
    /// `--incident-start`, if given.
    #[serde(default)]
    pub incident_start: Option<Timestamp>,
    /// `--world FILE` (simulator), as an absolute path.
    #[serde(default)]
    pub world: Option<std::path::PathBuf>,
    /// `--profile` (AWS).
    #[serde(default)]
    pub profile: Option<String>,
    /// `--endpoint-url` (AWS; an emulator or a proxy).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// `--shared-state` (or the runbook's `[state]`): where the run's team state lives on S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_state: Option<SharedConfig>,
    /// `--drill`: a recovery test (a runbook's `mode = "drill"` is one without the flag).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drill: bool,
    /// `--no-history`: the run is left out of the forecast history (`crate::forecast`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_history: bool,
}

impl RunSettings {
    /// Applies `--var` and `--sim` to a loaded runbook.
    pub fn apply(&self, rb: &mut Runbook) -> Result<(), JournalError> {
        for v in &self.vars {
            let Some((k, val)) = v.split_once('=') else {
                return Err(JournalError::Usage(format!("--var {v}: write NAME=VALUE")));
            };
            if !rb.vars.contains_key(k) {
                let names: Vec<&str> = rb.vars.keys().map(String::as_str).collect();
                return Err(JournalError::Usage(format!(
                    "--var {k}: the runbook has no variable `{k}` (it has: {})",
                    names.join(", ")
                )));
            }
            rb.vars.insert(k.to_string(), serde_json::Value::String(val.to_string()));
        }
        if self.sim {
            rb.target.backend = Backend::Sim;
        }
        if self.drill {
            rb.meta.drill = true;
        }
        Ok(())
    }
}

/// A session of a run: one process that started or resumed it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionInfo {
    pub number: u32,
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub started: Timestamp,
    pub resumed: bool,
    #[serde(default)]
    pub forced: bool,
}

/// `meta.json`: what the run is, who started it, how.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    pub run_id: String,
    pub runbook: String,
    pub title: String,
    /// The runbook file as given (absolute).
    pub runbook_path: String,
    pub sha256: String,
    /// The stored copies under `runbook/`, in order (the runbook, then the files it extends).
    pub files: Vec<String>,
    pub user: String,
    pub host: String,
    pub backend: String,
    pub account: Option<String>,
    pub primary: String,
    pub secondary: String,
    pub pid: u32,
    pub started: Timestamp,
    pub lock_key: String,
    pub settings: RunSettings,
    pub sessions: Vec<SessionInfo>,
    /// A drill's `drill_record` template from its runbook (`{id}`, `{record}`): the DNS record cleanup accepts as
    /// the drill's (`crate::drill::is_drill_record`). Absent: the default `drill-<short id>.<record>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_record: Option<String>,
}

impl Meta {
    pub fn read(run_dir: &Path) -> Result<Meta, JournalError> {
        let p = run_dir.join("meta.json");
        let text = fs::read_to_string(&p).map_err(JournalError::io("cannot read", &p))?;
        serde_json::from_str(&text).map_err(|e| JournalError::Corrupt {
            path: p,
            line: e.line(),
            reason: e.to_string(),
        })
    }

    pub(super) fn write(&self, run_dir: &Path) -> Result<(), JournalError> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        write_atomic(&run_dir.join("meta.json"), text.as_bytes())
    }
}

/// Who runs drconsole: `$USER` or `$LOGNAME`, else the name of the process's uid (sudo -i, cron and containers
/// often set neither), else `uid <N>`.
pub fn username() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(crate::util::uid_name)
        .unwrap_or_else(|| {
            // SAFETY: getuid has no preconditions and cannot fail
            format!("uid {}", unsafe { libc::getuid() })
        })
}

pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The outcome of the run's last session, if it finished (and it was not resumed after).
pub fn last_outcome(read: &JournalRead) -> Option<(Outcome, Timestamp)> {
    ended_view(read).and_then(|v| v.finished.map(|f| (f.outcome, f.at)))
}

/// How a run in `dir` ended, as every output says it (`recovered-late` included), if its last session ended.
pub fn verdict_in(dir: &Path) -> Option<&'static str> {
    ended_view(&read_journal(dir).ok()?)?.outcome_word()
}

/// The run's view, if its last session ended (a session note after the last end means a resume began).
pub fn ended_view(read: &JournalRead) -> Option<RunView> {
    let view = read.view();
    (view.finished.is_some() && !view.reopened()).then_some(view)
}

/// Where the shared state lives and how to reach it (kept in meta.json, so a resume on the same host finds it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SharedConfig {
    /// `s3://BUCKET/PREFIX`, as given.
    pub url: String,
    /// The bucket's region (default: the runbook's secondary region, else `AWS_REGION`).
    #[serde(default)]
    pub region: Option<String>,
    /// A KMS key id or ARN: objects are written with SSE-KMS under it.
    #[serde(default)]
    pub kms_key: Option<String>,
    /// An S3 endpoint (an emulator, a proxy, a VPC endpoint); else the SDK's `AWS_ENDPOINT_URL_S3` /
    /// `AWS_ENDPOINT_URL`.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// A shared-config profile for S3 (default: the run's `--profile`, else `AWS_PROFILE`).
    #[serde(default)]
    pub profile: Option<String>,
}

impl SharedConfig {
    /// Checks `s3://BUCKET/PREFIX`; `what` names where it came from, for the error.
    pub fn new(url: &str, what: &str) -> Result<SharedConfig, String> {
        let c = SharedConfig { url: url.trim().trim_end_matches('/').to_string(), ..SharedConfig::default() };
        c.split().map_err(|e| format!("{what} {url}: {e}"))?;
        Ok(c)
    }

    /// (bucket, prefix without slashes at either end).
    pub fn split(&self) -> Result<(String, String), String> {
        crate::util::parse_s3_url(&self.url)
    }

    /// From a runbook's `[state]` section.
    pub fn from_runbook(s: &crate::runbook::StateSection) -> SharedConfig {
        SharedConfig {
            url: s.shared.trim().trim_end_matches('/').to_string(),
            region: s.region.clone(),
            kms_key: s.kms_key.clone(),
            ..SharedConfig::default()
        }
    }
}

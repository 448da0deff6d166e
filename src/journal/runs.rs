//! `drconsole runs`: one line per run directory, from its meta.json and its journal read through the run view.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;

use super::lock::pid_alive;
use super::meta::{Meta, hostname};
use super::read::read_journal;

/// One line of `drconsole runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub runbook: String,
    /// running | ended | crashed (no end recorded and its process is gone: resume it) | unreadable
    pub status: String,
    pub started: Option<Timestamp>,
    /// recovered, failed, aborted, blocked, refused, interrupted; empty while running or after a crash.
    pub outcome: String,
    /// The outcome as every output says it (the run view's): `recovered-late` when it recovered but missed its RTO
    /// or RPO; empty while running or after a crash.
    pub verdict: String,
    /// A drill's verdict before its cleanup is known (`failed`, or `pending` until the cleanup): absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
    pub sessions: usize,
    pub dir: PathBuf,
    /// A problem reading the run (corrupt journal, unreadable meta.json).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

pub(super) fn summarize(dir: &Path) -> RunSummary {
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let meta = Meta::read(dir);
    let mut s = RunSummary {
        run_id: id,
        runbook: String::new(),
        status: "unreadable".into(),
        started: None,
        outcome: String::new(),
        verdict: String::new(),
        drill: None,
        sessions: 0,
        dir: dir.to_path_buf(),
        problem: None,
    };
    match &meta {
        Ok(m) => {
            s.runbook = m.runbook.clone();
            s.started = Some(m.started);
            s.sessions = m.sessions.len();
        }
        Err(e) => s.problem = Some(e.to_string()),
    }
    let read = match read_journal(dir) {
        Ok(r) => r,
        Err(e) => {
            s.problem = Some(e.to_string());
            return s;
        }
    };
    let view = read.view();
    if !view.reopened()
        && let Some(f) = &view.finished
    {
        s.status = "ended".into();
        s.outcome = f.outcome.as_str().into();
        s.verdict = view.outcome_word().unwrap_or_default().into();
        s.drill = view.drill_verdict(None).map(|d| d.as_str().to_string());
        return s;
    }
    let here = hostname();
    let live = view.opened.last().is_some_and(|s| s.host == here && pid_alive(s.pid));
    s.status = if live { "running" } else { "crashed" }.into();
    s
}

//! The incident record, `incidents/<id>/incident.json` in the state directory: what the incident is, who runs it,
//! and the run of each application. Written atomically when the incident starts (before any application does
//! anything) and again when each session of it ends.

use std::fs;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::cloud::limit::Limits;
use crate::cloud::sim::LimitFigures;
use crate::journal::{JournalError, StateDir};

pub const RECORD_FILE: &str = "incident.json";

/// One application of the incident and its run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppRun {
    pub app: String,
    pub runbook: String,
    pub runbook_path: String,
    pub run_id: String,
    /// The outcome of its last session (`recovered`, `failed`, ...); empty while it runs or after a crash.
    #[serde(default)]
    pub outcome: String,
}

/// A session of the incident (the process that started or resumed it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IncidentSession {
    pub number: u32,
    pub operator: String,
    pub pid: u32,
    pub started: Timestamp,
    #[serde(default)]
    pub ended: Option<Timestamp>,
    /// The incident's exit code at the end of this session.
    #[serde(default)]
    pub exit_code: Option<u8>,
    /// The rate limits' figures on the simulator (throttles, limiter waits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitFigures>,
    /// API calls made by all applications in this session, on the simulator (`service:Operation` → count).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub calls: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IncidentRecord {
    pub incident_id: String,
    pub name: String,
    pub title: String,
    /// The incident file (absolute), if it came from one.
    #[serde(default)]
    pub file: Option<String>,
    pub operator: String,
    pub backend: String,
    /// When the incident started (every application's RTO and RPO are measured from it).
    pub incident_start: Timestamp,
    pub started: Timestamp,
    pub limits: Limits,
    /// Most urgent first.
    pub apps: Vec<AppRun>,
    pub sessions: Vec<IncidentSession>,
}

/// A new incident id: `inc-` and the same time-and-random form as a run id.
pub fn new_incident_id() -> String {
    format!("inc-{}", crate::engine::new_run_id())
}

pub fn incidents_dir(state: &StateDir) -> PathBuf {
    state.root.join("incidents")
}

impl IncidentRecord {
    pub fn dir(&self, state: &StateDir) -> PathBuf {
        incidents_dir(state).join(&self.incident_id)
    }

    /// Writes the record atomically (its directory is made if needed).
    pub fn write(&self, state: &StateDir) -> Result<(), JournalError> {
        let dir = self.dir(state);
        crate::journal::private_dir(&dir)?;
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        crate::journal::write_atomic(&dir.join(RECORD_FILE), text.as_bytes())
    }

    /// Copies the record to the shared state (`incidents/<id>/incident.json` under its prefix), so that `watch
    /// INCIDENT` on another host finds the incident and its runs.
    pub fn mirror(&self, cfg: &crate::journal::shared::SharedConfig, region: Option<&str>) -> Result<(), JournalError> {
        let shared = crate::journal::shared::Shared::open(cfg, region)?;
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        shared.put_object(&format!("incidents/{}/{RECORD_FILE}", self.incident_id), text.into_bytes())
    }

    pub fn read(dir: &Path) -> Result<IncidentRecord, JournalError> {
        let p = dir.join(RECORD_FILE);
        let text = fs::read_to_string(&p).map_err(JournalError::io("cannot read", &p))?;
        serde_json::from_str(&text).map_err(|e| JournalError::Corrupt {
            path: p,
            line: e.line(),
            reason: e.to_string(),
        })
    }
}

/// Whether `id` names an incident (an id, a unique prefix of one starting `inc-`, or an incident directory).
pub fn find_incident(state: &StateDir, id: &str) -> Option<Result<PathBuf, JournalError>> {
    let as_path = Path::new(id);
    if as_path.join(RECORD_FILE).is_file() {
        return Some(Ok(as_path.to_path_buf()));
    }
    if !id.starts_with("inc-") && id != "last-incident" {
        return None;
    }
    let mut ids: Vec<String> = list_ids(state);
    ids.sort();
    if id == "last-incident" {
        return Some(
            ids.last()
                .map(|i| incidents_dir(state).join(i))
                .ok_or_else(|| JournalError::NotFound("no incidents yet".into())),
        );
    }
    let m: Vec<&String> = ids.iter().filter(|i| i.starts_with(id)).collect();
    Some(match m.as_slice() {
        [one] => Ok(incidents_dir(state).join(one)),
        [] => Err(JournalError::NotFound(format!(
            "no incident `{id}` under {} (`drconsole runs` lists them)",
            incidents_dir(state).display()
        ))),
        many if many.iter().any(|i| *i == id) => Ok(incidents_dir(state).join(id)),
        many => Err(JournalError::Usage(format!("`{id}` matches {} incidents; give more of the id", many.len()))),
    })
}

fn list_ids(state: &StateDir) -> Vec<String> {
    match fs::read_dir(incidents_dir(state)) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter(|e| e.path().join(RECORD_FILE).is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Every incident under the state directory, oldest first (unreadable records are left out).
pub fn list_incidents(state: &StateDir) -> Vec<IncidentRecord> {
    let mut ids = list_ids(state);
    ids.sort();
    ids.iter().filter_map(|i| IncidentRecord::read(&incidents_dir(state).join(i)).ok()).collect()
}

/// `watch INCIDENT` on a host whose state directory does not have the incident: its record from the shared state
/// (when configured), written into this state directory; `None` when no shared state is configured.
pub fn pull_incident(state: &StateDir, id: &str) -> Option<Result<PathBuf, JournalError>> {
    let cfg = crate::journal::shared::configured()?;
    Some((|| {
        let shared = crate::journal::shared::Shared::open(&cfg, None)?;
        let bytes = shared.get_object(&format!("incidents/{id}/{RECORD_FILE}"))?.ok_or_else(|| {
            JournalError::NotFound(format!("no incident {id} here nor in the shared state {}", cfg.url))
        })?;
        let record: IncidentRecord = serde_json::from_slice(&bytes).map_err(|e| JournalError::Corrupt {
            path: PathBuf::from(format!("{}/incidents/{id}/{RECORD_FILE}", cfg.url)),
            line: e.line(),
            reason: e.to_string(),
        })?;
        record.write(state)?;
        Ok(record.dir(state))
    })())
}

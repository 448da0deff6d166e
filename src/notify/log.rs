//! The delivery log beside the journal (`notify.jsonl`): one line per message and webhook. A leaf: the reports read
//! it without depending on the delivery task.

use std::io::Write;
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The delivery log beside the journal.
pub const LOG_FILE: &str = "notify.jsonl";

/// One line of `notify.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub at: Timestamp,
    /// The notification's `event`.
    pub event: String,
    /// The webhook, redacted ([`super::redact_url`]).
    pub url: String,
    /// `delivered`, `failed` (every attempt failed) or `dropped` (the queue was full).
    pub result: String,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The delivery log of a run directory (empty when the run sent no notification).
pub fn read_log(run_dir: &Path) -> Vec<Delivery> {
    std::fs::read_to_string(run_dir.join(LOG_FILE))
        .map(|t| t.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
        .unwrap_or_default()
}

pub(super) fn append_log(run_dir: &Path, d: &Delivery) {
    let path = run_dir.join(LOG_FILE);
    let Ok(line) = serde_json::to_string(d) else { return };
    let written = crate::journal::base::private_file()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        eprintln!("drconsole: cannot write the notification log {}: {e}", path.display());
    }
}

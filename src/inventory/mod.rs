//! The DR inventory: what the primary region had, and whose data each recovery point holds and from when, recorded
//! by every `preflight` while the primary answers, and read by a run on the day it does not.
//!
//! Rules:
//! - written only from what the primary answered: a preflight that could not read the primary writes nothing (the
//!   newest inventory stays the newest);
//! - one file per runbook in the state directory (`inventory/<runbook>.json`), replaced atomically; with shared
//!   state, the same bytes at `<prefix>/inventory/<runbook>.json` on S3, so any host reads the newest;
//! - a reader takes the newest of the local and the shared copy and always says which one (its time and age).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub mod command;

/// The format's version: a reader refuses a newer one.
pub const VERSION: u32 = 1;

/// The inventory of one runbook's application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub version: u32,
    /// When the preflight that wrote it ran.
    pub taken: Timestamp,
    pub runbook: String,
    pub app: String,
    pub primary: String,
    pub secondary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The host that wrote it.
    #[serde(default)]
    pub host: String,
    /// The primary's EBS volumes, per tag the runbook restores them by (`app=cross-sell`).
    #[serde(default)]
    pub volume_sets: Vec<VolumeSet>,
    #[serde(default)]
    pub databases: Vec<Database>,
    #[serde(default)]
    pub images: Vec<Image>,
    /// Every recovery point seen in either region, with its identity as established while the primary answered.
    #[serde(default)]
    pub points: Vec<Point>,
    /// What the preflight could not attribute, and the copy convention it proposes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeSet {
    /// `key=value`
    pub tag: String,
    pub volumes: Vec<Volume>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    pub size_gib: u64,
    pub az: String,
    pub volume_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Database {
    pub id: String,
    pub engine: String,
    pub class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_group: Option<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    pub storage_gib: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub region: String,
    pub created: Timestamp,
}

/// A recovery point and whose data it holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Snapshot id (EBS, RDS).
    pub id: String,
    /// `ebs-snapshot`, `rds-snapshot`
    pub kind: String,
    pub region: String,
    /// The volume whose data it holds (EBS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// The DB instance whose data it holds (RDS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// For a copy: the snapshot it was copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_snapshot: Option<String>,
    /// When its data was taken (the source snapshot's time for a copy).
    pub time: Timestamp,
    /// `time` is only an upper bound (a copy's own start): the data is older.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub time_is_bound: bool,
    /// What established its identity.
    #[serde(default)]
    pub by: String,
}

impl Inventory {
    pub fn point(&self, id: &str) -> Option<&Point> {
        self.points.iter().find(|p| p.id == id)
    }
    pub fn volume_set(&self, tag: &str) -> Option<&VolumeSet> {
        self.volume_sets.iter().find(|s| s.tag == tag)
    }
    /// `2026-12-07T09:30:00Z (1h12m old)` against `now`.
    pub fn describe_age(&self, now: Timestamp) -> String {
        let secs = u64::try_from(crate::run::clock::secs_between(self.taken, now).max(0)).unwrap_or(0);
        format!(
            "the DR inventory of {} ({} old, written by preflight{})",
            self.taken.strftime("%Y-%m-%d %H:%M:%SZ"),
            crate::util::fmt_duration(std::time::Duration::from_secs(secs)),
            if self.host.is_empty() { String::new() } else { format!(" on {}", self.host) }
        )
    }
}

/// `<state>/inventory/<runbook>.json`
pub fn path(state_root: &Path, runbook: &str) -> PathBuf {
    state_root.join("inventory").join(format!("{runbook}.json"))
}

/// The key under the shared state prefix.
pub fn shared_key(runbook: &str) -> String {
    format!("inventory/{runbook}.json")
}

fn parse(bytes: &[u8], what: &str) -> Result<Inventory, String> {
    let inv: Inventory = serde_json::from_slice(bytes).map_err(|e| format!("{what}: not a DR inventory: {e}"))?;
    if inv.version > VERSION {
        return Err(format!(
            "{what}: inventory version {} is newer than this drconsole reads ({VERSION})",
            inv.version
        ));
    }
    Ok(inv)
}

/// Reads the local inventory of `runbook`; `Ok(None)` when there is none.
pub fn load_local(state_root: &Path, runbook: &str) -> Result<Option<Inventory>, String> {
    let p = path(state_root, runbook);
    match std::fs::read(&p) {
        Ok(b) => parse(&b, &p.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

/// Reads the shared inventory of `runbook` (shared state configured); `Ok(None)` when there is none.
pub fn load_shared(runbook: &str) -> Result<Option<Inventory>, String> {
    let Some(cfg) = crate::journal::shared::configured() else { return Ok(None) };
    let shared = crate::journal::shared::Shared::open(&cfg, None).map_err(|e| e.to_string())?;
    match shared.get_object(&shared_key(runbook)).map_err(|e| e.to_string())? {
        Some(bytes) => parse(&bytes, &format!("{}/{}", cfg.url, shared_key(runbook))).map(Some),
        None => Ok(None),
    }
}

/// The newest inventory of `runbook`, local or shared, and where it came from. A copy that cannot be read is a
/// note, not an error: the other may still be there.
pub fn load_newest(state_root: Option<&Path>, runbook: &str) -> (Option<(Inventory, String)>, Vec<String>) {
    let mut notes = Vec::new();
    let mut best: Option<(Inventory, String)> = None;
    if let Some(root) = state_root {
        match load_local(root, runbook) {
            Ok(Some(i)) => best = Some((i, path(root, runbook).display().to_string())),
            Ok(None) => {}
            Err(e) => notes.push(e),
        }
    }
    match load_shared(runbook) {
        Ok(Some(i)) => {
            if best.as_ref().is_none_or(|(b, _)| i.taken > b.taken) {
                let from = crate::journal::shared::configured().map(|c| c.url).unwrap_or_default();
                best = Some((i, format!("{from}/{}", shared_key(runbook))));
            }
        }
        Ok(None) => {}
        Err(e) => notes.push(format!("shared inventory not read: {e}")),
    }
    (best, notes)
}

/// Writes the inventory locally (atomically) and, with shared state, to S3. Returns where it went.
pub fn save(inv: &Inventory, state_root: &Path) -> Result<Vec<String>, String> {
    let p = path(state_root, &inv.runbook);
    let dir = p.parent().unwrap_or(state_root);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let bytes = serde_json::to_vec_pretty(inv).map_err(|e| format!("inventory: {e}"))?;
    let tmp = p.with_extension("json.tmp");
    std::fs::write(&tmp, &bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &p).map_err(|e| format!("{}: {e}", p.display()))?;
    let mut out = vec![p.display().to_string()];
    if let Some(cfg) = crate::journal::shared::configured() {
        let shared = crate::journal::shared::Shared::open(&cfg, Some(&inv.secondary)).map_err(|e| e.to_string())?;
        shared.put_object(&shared_key(&inv.runbook), bytes).map_err(|e| e.to_string())?;
        out.push(format!("{}/{}", cfg.url, shared_key(&inv.runbook)));
    }
    Ok(out)
}

/// This host's name, for "written by".
pub fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inventory_round_trips_and_a_newer_format_is_refused() {
        let dir = std::env::temp_dir().join(format!("drconsole-inv-{}", std::process::id()));
        let inv = Inventory {
            version: VERSION,
            taken: "2026-12-07T09:30:00Z".parse().unwrap_or_else(|e| panic!("{e}")),
            runbook: "cross-sell-failover".into(),
            app: "cross-sell".into(),
            primary: "us-east-1".into(),
            secondary: "us-west-2".into(),
            points: vec![Point {
                id: "snap-1".into(),
                kind: "ebs-snapshot".into(),
                region: "us-west-2".into(),
                volume: Some("vol-1".into()),
                time: "2026-12-07T09:00:00Z".parse().unwrap_or_else(|e| panic!("{e}")),
                by: "CopySnapshot description".into(),
                ..Point::default()
            }],
            ..Inventory::default()
        };
        save(&inv, &dir).unwrap_or_else(|e| panic!("{e}"));
        let back = load_local(&dir, "cross-sell-failover").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.as_ref(), Some(&inv));
        assert_eq!(load_local(&dir, "other").unwrap_or_else(|e| panic!("{e}")), None);
        let newer =
            serde_json::to_vec(&Inventory { version: VERSION + 1, ..inv.clone() }).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(path(&dir, "cross-sell-failover"), newer).unwrap_or_else(|e| panic!("{e}"));
        let err = load_local(&dir, "cross-sell-failover").err().unwrap_or_default();
        assert!(err.contains("newer than this drconsole reads"), "{err}");
        let now: Timestamp = "2026-12-07T10:42:00Z".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(inv.describe_age(now).contains("(1h12m old"), "{}", inv.describe_age(now));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

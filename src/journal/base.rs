//! The journal's shared types, a leaf of `journal/`: its error, the state directory, owner-only files, the
//! record line format (notes, checksums), the lock holder. Every other journal module imports them from here, and
//! this module imports none of them, so no import circle runs through it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::run::Event;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{}:{line}: {reason}", path.display())]
    Corrupt { path: PathBuf, line: usize, reason: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Usage(String),
    /// The run lock is held by a live process, or by one this host cannot check.
    #[error("{0}")]
    Locked(String),
    /// The runbook changed since the run started.
    #[error("{0}")]
    Changed(String),
    /// The shared state (S3) cannot be reached or refused a write.
    #[error("{0}")]
    Shared(String),
}

impl JournalError {
    pub fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> JournalError {
        let path = path.to_path_buf();
        move |source| JournalError::Io { what, path, source }
    }

    /// The process exit code (DESIGN.md): 2 usage, 4 refused by a guard (lock, changed runbook), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            JournalError::NotFound(_) | JournalError::Usage(_) => crate::exit::USAGE,
            JournalError::Locked(_) | JournalError::Changed(_) => crate::exit::REFUSED,
            JournalError::Io { .. } | JournalError::Corrupt { .. } | JournalError::Shared(_) => crate::exit::FAILED,
        }
    }
}

/// The state directory: `runs/` and `locks/`.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
}

impl StateDir {
    /// `--state-dir`, else `$XDG_STATE_HOME/drconsole`, else `$HOME/.local/state/drconsole`.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, JournalError> {
        if let Some(p) = explicit {
            return Ok(Self { root: p.to_path_buf() });
        }
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(x) = env("XDG_STATE_HOME").filter(|p| p.is_absolute()) {
            return Ok(Self { root: x.join("drconsole") });
        }
        match env("HOME") {
            Some(h) => Ok(Self { root: h.join(".local/state/drconsole") }),
            None => Err(JournalError::Usage(
                "cannot find a state directory: neither XDG_STATE_HOME nor HOME is set; pass --state-dir DIR".into(),
            )),
        }
    }

    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }

    pub fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }
}

/// Creates a directory (and its parents) readable by the owner only.
pub(crate) fn private_dir(path: &Path) -> Result<(), JournalError> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(path).map_err(JournalError::io("cannot create directory", path))
}

/// Options for a new file readable by the owner only.
pub(crate) fn private_file() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o
}

/// Writes a file atomically (temporary file, fsync, rename, fsync of the directory), owner-only.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = private_file()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(JournalError::io("cannot create", &tmp))?;
    f.write_all(bytes).map_err(JournalError::io("cannot write", &tmp))?;
    f.sync_all().map_err(JournalError::io("cannot sync", &tmp))?;
    fs::rename(&tmp, path).map_err(JournalError::io("cannot rename into place", path))?;
    sync_dir(dir);
    Ok(())
}

/// fsync of a directory, so a new entry in it survives a crash (best effort: not every filesystem allows it).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A journal record that is not an engine event: who opened a session of the run, a forced resume, a lock taken
/// over.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// A process started (or resumed) the run.
    Session { number: u32, resumed: bool, user: String, host: String, pid: u32, at: Timestamp },
    /// `resume --force` accepted a runbook whose sha256 changed since the run started.
    Forced { by: String, old_sha256: String, new_sha256: String, at: Timestamp },
    /// `--take-over-lock` (or a resume of the same run) took over a lock left by a dead process.
    LockTakenOver { by: String, previous: LockInfo, reason: String, at: Timestamp },
    /// The run's state is mirrored to S3 (`--shared-state`), from this session on.
    SharedState { url: String, at: Timestamp },
    /// The shared state did not answer for a while; the run waited for it.
    SharedStatePaused { url: String, since: Timestamp, until: Timestamp, reason: String },
}

/// One line of the journal, without its checksum.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Line {
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Note>,
}

/// Length of the checksum suffix `,"crc":"<16 hex>"}`.
pub(crate) const CRC_SUFFIX_LEN: usize = 26;

/// The first 8 bytes of the sha256 of the record body, as hex.
pub(crate) fn checksum(body: &str) -> String {
    let mut h = crate::util::sha256_hex([body.as_bytes()]);
    h.truncate(16);
    h
}

/// The text of a record line (without the newline): the body with `"crc"` appended as its last field.
pub(crate) fn encode(line: &Line) -> Result<String, serde_json::Error> {
    let body = serde_json::to_string(line)?;
    let crc = checksum(&body);
    let open = body.strip_suffix('}').unwrap_or(&body);
    Ok(format!("{open},\"crc\":\"{crc}\"}}"))
}

/// Who holds a run lock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockInfo {
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub since: Timestamp,
    pub run_id: String,
    pub runbook: String,
}

/// The file a [`WorldStore`] is saved to; read it back with [`load_world`].
pub const WORLD_FILE: &str = "world.json";

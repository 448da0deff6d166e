//! The run journal: every run gets an id and a directory, every engine event is appended to `journal.jsonl` (and on
//! disk) before the engine acts on it, and a run can be resumed, reported on and watched from it.
//!
//! Layout of the state directory (`--state-dir`, else `$XDG_STATE_HOME/drconsole`, else
//! `~/.local/state/drconsole`), every directory 0700 and every file 0600:
//!
//! ```text
//! runs/<run-id>/journal.jsonl   one record a line: {"seq":N,"event":{...}|"note":{...},"crc":"<16 hex>"}
//! runs/<run-id>/meta.json       run id, runbook path and name, sha256, operator, backend, pid, start, settings
//! runs/<run-id>/runbook/        the runbook text: 0-<file>.toml, then the files it extends; runbook.sha256
//! runs/<run-id>/world.json      the simulator's world (saved through a [`WorldStore`])
//! runs/<run-id>/report.md|json, junit.xml   written when the run ends, or by `drconsole report`
//! locks/<runbook>--<account>--<primary>--<secondary>.lock   the run lock
//! ```
//!
//! Durability: each record is written with one `write` on a file opened `O_APPEND`, before the sink returns, so
//! it survives the process being killed at any instant. Records that, if lost in an OS crash or power cut, would
//! make a resumed run do something twice or forget a decision (`resource` creating/created/found, approvals,
//! answers, a chosen recovery point, step outcomes, run start and end, notes) are also `fdatasync`ed before the
//! sink returns. Progress, projections and retries are not: losing them costs nothing on resume, and syncing every
//! progress line of a long wait would only slow the run.

mod edge;
mod follow;
mod lock;
mod meta;
mod read;
pub mod report;
mod runs;
mod session;
pub mod shared;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::engine::{Command, Event, EventKind, EventSink, Redactor};

pub use follow::follow;
pub use lock::{LockInfo, RunLock, SharedLock, lock_key, pid_alive};
pub use meta::{Meta, RunSettings, SessionInfo, ended_view, hostname, last_outcome, username, verdict_in};
pub use read::{JournalRead, Record, read_journal, read_journal_prefix};
pub use runs::RunSummary;
pub use session::{JournalInfo, Prepared, SessionGuard, list_runs, prepare_new, prepare_resume, prior_state};

/// The environment variable that kills the process (SIGKILL) right after journal record N is written: the crash
/// test's precise kill points (`finished`: right after the run's end is recorded and handled; `created:KIND`: in
/// the window between a create call returning and its `created` record — the simulator's world is saved with the
/// new resource, the record is never written, as when the process dies while AWS already holds the resource).
/// Honoured by debug builds only.
pub const KILL_AFTER_ENV: &str = "DRCONSOLE_TEST_KILL_AFTER_RECORD";

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

    /// A run directory from a run id, a unique prefix of one, `last`, or a path to a run directory.
    pub fn find_run(&self, run: &str) -> Result<PathBuf, JournalError> {
        if let Some(dir) = shared::pull_for_read(self, run)? {
            return Ok(dir);
        }
        let as_path = Path::new(run);
        if as_path.join("journal.jsonl").is_file() {
            return Ok(as_path.to_path_buf());
        }
        let runs = self.runs();
        let mut ids: Vec<String> = match fs::read_dir(&runs) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .filter(|e| e.path().join("journal.jsonl").is_file())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect(),
            Err(_) => Vec::new(),
        };
        ids.sort();
        if run == "last" {
            return ids
                .last()
                .map(|id| runs.join(id))
                .ok_or_else(|| JournalError::NotFound(format!("no runs under {}", runs.display())));
        }
        if ids.iter().any(|id| id == run) {
            return Ok(runs.join(run));
        }
        let matching: Vec<&String> = ids.iter().filter(|id| id.starts_with(run)).collect();
        match matching.as_slice() {
            [one] => Ok(runs.join(one)),
            [] => Err(JournalError::NotFound(format!(
                "no run `{run}` under {} (`drconsole runs` lists them)",
                runs.display()
            ))),
            many => Err(JournalError::Usage(format!(
                "`{run}` matches {} runs ({}); give more of the id",
                many.len(),
                many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
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

/// Saves the simulator's world beside the journal, so a resumed simulated run finds the resources an earlier
/// session created. Called by the journal sink before it writes each checkpoint record (resources, step
/// outcomes, run end): the world on disk is never older than what the journal says was created.
///
/// An implementation must not include secret values (Secrets Manager contents): re-create them on restore from
/// the scenario. The bytes are also passed through the run's secret redaction before they are written.
pub trait WorldStore: Send {
    /// The world, serialized (e.g. `serde_json::to_vec(&world)`).
    fn save(&mut self) -> Result<Vec<u8>, String>;
}

/// The file a [`WorldStore`] is saved to; read it back with [`load_world`].
pub const WORLD_FILE: &str = "world.json";

/// The saved simulator world of a run, if any.
pub fn load_world(run_dir: &Path) -> Result<Option<Vec<u8>>, JournalError> {
    let p = run_dir.join(WORLD_FILE);
    match fs::read(&p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(JournalError::Io { what: "cannot read", path: p, source: e }),
    }
}

/// Writes records to `journal.jsonl`. As an [`EventSink`], it records every event before the engine goes on.
pub struct Journal {
    path: PathBuf,
    dir: PathBuf,
    file: File,
    seq: u64,
    /// Where to send an abort if the journal cannot be written (set once the engine starts).
    abort: Arc<OnceLock<mpsc::UnboundedSender<Command>>>,
    failed: bool,
    world: Option<Box<dyn WorldStore>>,
    redactor: Option<Redactor>,
    kill_after: Option<u64>,
    kill_after_finish: bool,
    kill_before_created: Option<String>,
    reports: bool,
    /// The run lock, released as soon as the run's end is recorded.
    lock: Option<lock::SharedLock>,
    /// The mirror to S3 (`--shared-state`), if any.
    shared: Option<shared::Mirror>,
}

impl Journal {
    /// Opens (creating if needed) the journal of a run directory for appending. A torn last line left by a crash
    /// is cut off first, so the next record starts on a line of its own.
    pub fn open(run_dir: &Path) -> Result<Self, JournalError> {
        let path = run_dir.join("journal.jsonl");
        let existing = match fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(JournalError::Io { what: "cannot read", path, source: e }),
        };
        let mut seq = 0;
        if let Some(bytes) = &existing {
            let read = read::parse(&path, bytes)?;
            seq = read.last_record_seq();
            let keep = read.valid_len;
            if keep < bytes.len() {
                let f = OpenOptions::new().write(true).open(&path).map_err(JournalError::io("cannot open", &path))?;
                f.set_len(keep as u64).map_err(JournalError::io("cannot cut the torn last line of", &path))?;
                f.sync_all().map_err(JournalError::io("cannot sync", &path))?;
            }
        }
        let file = private_file()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(JournalError::io("cannot open the journal", &path))?;
        if existing.is_none() {
            sync_dir(run_dir);
        }
        let hook = if cfg!(debug_assertions) { std::env::var(KILL_AFTER_ENV).ok() } else { None };
        let kill_after = hook.as_deref().and_then(|v| v.trim().parse().ok());
        let kill_after_finish = hook.as_deref().is_some_and(|v| v.trim() == "finished");
        let kill_before_created = hook.as_deref().and_then(|v| v.trim().strip_prefix("created:")).map(str::to_string);
        Ok(Self {
            path,
            dir: run_dir.to_path_buf(),
            file,
            seq,
            abort: Arc::new(OnceLock::new()),
            failed: false,
            world: None,
            redactor: None,
            kill_after,
            kill_after_finish,
            kill_before_created,
            reports: true,
            lock: None,
            shared: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last record number written.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Saves the simulator's world at each checkpoint (see [`WorldStore`]).
    pub fn set_world_store(&mut self, world: Box<dyn WorldStore>) {
        self.world = Some(world);
    }

    /// Whether the sink writes the reports when the run finishes (default: yes).
    pub fn set_reports(&mut self, on: bool) {
        self.reports = on;
    }

    /// The run lock to release when the run's end is recorded.
    pub fn set_lock(&mut self, lock: lock::SharedLock) {
        self.lock = Some(lock);
    }

    /// Mirrors every record from now on to the shared state (see [`shared`]).
    pub(crate) fn set_shared(&mut self, mirror: shared::Mirror) {
        self.shared = Some(mirror);
    }

    pub(crate) fn set_redactor(&mut self, redactor: Redactor) {
        self.redactor = Some(redactor);
    }

    pub(crate) fn abort_handle(&self) -> Arc<OnceLock<mpsc::UnboundedSender<Command>>> {
        self.abort.clone()
    }

    /// Appends a note (session opened, forced resume, lock taken over), synced to disk.
    pub fn note(&mut self, note: Note) -> Result<(), JournalError> {
        self.append(Line { seq: self.seq + 1, event: None, note: Some(note) }, true)
    }

    fn append(&mut self, line: Line, sync: bool) -> Result<(), JournalError> {
        let seq = line.seq;
        let mut text =
            encode(&line).map_err(|e| JournalError::Usage(format!("cannot encode a journal record: {e}")))?;
        text.push('\n');
        // one write on an O_APPEND file: the record reaches the OS whole or (on a crash mid-write) torn at the end
        self.file.write_all(text.as_bytes()).map_err(JournalError::io("cannot append to", &self.path))?;
        if sync {
            self.file.sync_data().map_err(JournalError::io("cannot sync", &self.path))?;
        }
        self.seq = seq;
        if let Some(m) = self.shared.as_mut() {
            // a checkpoint is on S3 before the sink returns; the others are queued, in order
            m.record(seq, &text[..text.len() - 1], sync)?;
        }
        if self.kill_after == Some(seq) {
            kill_self();
        }
        Ok(())
    }

    fn checkpoint(kind: &EventKind) -> bool {
        match kind {
            EventKind::StepProgress { .. } | EventKind::Projection { .. } | EventKind::StepRetrying { .. } => false,
            EventKind::StepStarted { .. }
            | EventKind::StepAwaitingApproval { .. }
            | EventKind::OperatorRequest { .. } => false,
            EventKind::Resource { phase, .. } => {
                matches!(phase.as_str(), "creating" | "created" | "found" | "deleting")
            }
            _ => true,
        }
    }

    fn save_world(&mut self) -> Result<(), JournalError> {
        let Some(w) = self.world.as_mut() else { return Ok(()) };
        let bytes = w.save().map_err(|e| JournalError::Usage(format!("cannot save the simulator's world: {e}")))?;
        let bytes = match (&self.redactor, std::str::from_utf8(&bytes)) {
            (Some(r), Ok(text)) => r.redact(text).into_bytes(),
            _ => bytes,
        };
        write_atomic(&self.dir.join(WORLD_FILE), &bytes)?;
        match &self.shared {
            Some(m) => m.snapshot(WORLD_FILE, &bytes),
            None => Ok(()),
        }
    }

    fn record(&mut self, ev: &Event) -> Result<(), JournalError> {
        let sync = Self::checkpoint(&ev.kind);
        if sync {
            self.save_world()?;
        }
        if let (Some(k), EventKind::Resource { phase, kind, .. }) = (&self.kill_before_created, &ev.kind)
            && phase == "created"
            && kind == k
        {
            kill_self();
        }
        self.append(Line { seq: self.seq + 1, event: Some(ev.clone()), note: None }, sync)?;
        let pauses = self.shared.as_ref().map(shared::Mirror::take_pauses).unwrap_or_default();
        for p in pauses {
            self.note(p)?;
        }
        if matches!(ev.kind, EventKind::RunFinished { .. }) {
            if self.reports {
                match report::write_all(&self.dir) {
                    Ok(_) => {
                        if let Some(m) = &self.shared {
                            m.reports(&self.dir);
                        }
                    }
                    Err(e) => eprintln!("drconsole: the run finished but its reports could not be written: {e}"),
                }
            }
            // the forecast learns from it (unless --no-history); before the lock is released, so the next run of
            // the runbook reads it
            if let Some(rec) = crate::forecast::store::on_run_finished(&self.dir)
                && let Some(m) = &self.shared
            {
                // with shared state, the team's history is on S3 too: one object per run
                m.put_beside(&crate::forecast::store::shared_key(&rec), crate::forecast::store::encode(&rec));
            }
            // the run has ended: the next run may start, whatever happens to this process now
            if let Some(l) = &self.lock {
                l.release();
            }
            if self.kill_after_finish {
                kill_self();
            }
        }
        Ok(())
    }
}

impl EventSink for Journal {
    fn event(&mut self, ev: &Event) {
        if self.failed {
            return;
        }
        if let Err(e) = self.record(ev) {
            if matches!(e, JournalError::Shared(_) | JournalError::Locked(_)) {
                // the shared state does not have this record (S3 gone too long, or this session was fenced off
                // by a takeover): stop before the engine acts on it
                shared::stop_session(&e);
            }
            // nothing may happen unrecorded: stop the run
            self.failed = true;
            let reason = format!("the journal cannot be written ({e}); stopping so that nothing is done unrecorded");
            eprintln!("drconsole: {reason}");
            if let Some(tx) = self.abort.get() {
                let _ = tx.send(Command::Abort { reason, by: "drconsole".into() });
            }
        }
    }
}

/// SIGKILL, as a crash would: to the whole process group when this process leads it (its `sh -c` children die
/// too, as on a lost machine), else to this process alone.
fn kill_self() {
    #[cfg(unix)]
    // SAFETY: plain libc calls with no pointers; the process ends here
    unsafe {
        if libc::getpgrp() == libc::getpid() {
            libc::kill(0, libc::SIGKILL);
        }
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort();
}

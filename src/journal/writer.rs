//! The journal writer: appends every engine event (and notes) to `journal.jsonl` as an [`EventSink`], saves the
//! simulator's world at checkpoints, mirrors records to the shared state, writes the reports when the run ends.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;

use super::base::{JournalError, Line, Note, WORLD_FILE, encode, private_file, sync_dir, write_atomic};
use super::{lock, read, report, shared};
use crate::engine::{Command, Event, EventKind, EventSink, Redactor};
use crate::run::Halt;

/// The environment variable that kills the process (SIGKILL) right after journal record N is written: the crash
/// test's precise kill points (`finished`: right after the run's end is recorded and handled; `created:KIND`: in
/// the window between a create call returning and its `created` record — the simulator's world is saved with the
/// new resource, the record is never written, as when the process dies while AWS already holds the resource).
/// Honoured by debug builds only.
pub const KILL_AFTER_ENV: &str = "DRCONSOLE_TEST_KILL_AFTER_RECORD";

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
    /// The error that halts the run (the shared state lacks a record), for the emitter to take.
    halt: Option<Halt>,
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
            halt: None,
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
            self.failed = true;
            if matches!(e, JournalError::Shared(_) | JournalError::Locked(_)) {
                // the shared state does not have this record (S3 gone too long, or this session was fenced off
                // by a takeover): halt before the engine acts on it (the emitter asks `halt` next); the command
                // ends with this error's exit code (4 fenced off, 1 S3 gone)
                self.halt = Some(Halt { message: e.to_string(), exit_code: e.exit_code() });
                return;
            }
            // nothing may happen unrecorded: stop the run
            let reason = format!("the journal cannot be written ({e}); stopping so that nothing is done unrecorded");
            eprintln!("drconsole: {reason}");
            if let Some(tx) = self.abort.get() {
                let _ = tx.send(Command::Abort { reason, by: "drconsole".into() });
            }
        }
    }

    fn halt(&mut self) -> Option<Halt> {
        self.halt.take()
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

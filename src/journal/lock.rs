//! The run lock: one active run of a runbook per account and region set. A file created atomically (`O_EXCL`)
//! under `locks/`, holding who runs it; removed when the run ends (its `run_finished` is recorded), not when the
//! process exits. A lock left by a process that died is detected (its pid is not alive on this host) and can be
//! taken over explicitly; so can a lock file that is empty or cannot be parsed (a crash or a full disk while it was
//! written). A lock whose run's journal records its end is released: the next run takes it without being asked.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use super::base::LockInfo;
use super::base::{JournalError, private_dir, private_file, sync_dir};
use jiff::Timestamp;

impl LockInfo {
    fn who(&self) -> String {
        format!(
            "user {} on host {}, pid {}, since {} (run {})",
            self.user,
            self.host,
            self.pid,
            self.since.strftime("%Y-%m-%d %H:%M:%SZ"),
            self.run_id
        )
    }
}

/// The lock file name for a runbook on an account and region set.
pub fn lock_key(runbook: &str, account: Option<&str>, primary: &str, secondary: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).collect()
    };
    format!("{}--{}--{}--{}", clean(runbook), clean(account.unwrap_or("any-account")), clean(primary), clean(secondary))
}

/// Whether a process is alive on this host (a zombie counts as dead).
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    if Path::new("/proc/self/stat").exists() {
        return match fs::read_to_string(format!("/proc/{pid}/stat")) {
            // the state follows the command name in parentheses
            Ok(stat) => stat.rsplit_once(')').map(|(_, rest)| rest.trim_start()).is_some_and(|r| !r.starts_with('Z')),
            Err(_) => false,
        };
    }
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        // SAFETY: signal 0 checks only that the process exists
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    true
}

/// A held run lock; released (the file removed) when dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    info: LockInfo,
}

/// A lock taken over from a dead holder.
#[derive(Debug, Clone)]
pub struct TakenOver {
    pub previous: LockInfo,
    pub reason: String,
}

/// The refusal of a lock held by a live run on this host.
fn already_running(holder: &LockInfo, path: &Path) -> JournalError {
    JournalError::Locked(format!(
        "runbook `{}` is already running on this account and regions: {}.\n\
         Only one run at a time may change these resources. Follow it with `drconsole watch {}`, \
         or wait for it to finish. (lock: {})",
        holder.runbook,
        holder.who(),
        holder.run_id,
        path.display()
    ))
}

impl RunLock {
    /// Whether a live run on this host holds `locks/<key>.lock`, without taking it: the refusal
    /// [`RunLock::acquire`] would give, said before the console's opening screen rather than after it. A stale or
    /// damaged lock, or one from another host, passes here: `acquire` decides those when the run starts.
    pub fn probe(locks: &Path, key: &str) -> Result<(), JournalError> {
        let path = locks.join(format!("{key}.lock"));
        let Ok(Some((_, Some(holder)))) = read_holder(&path) else { return Ok(()) };
        let alive =
            !run_ended(locks, &holder.run_id) && holder.host == super::meta::hostname() && pid_alive(holder.pid);
        if alive { Err(already_running(&holder, &path)) } else { Ok(()) }
    }

    /// Takes the lock `locks/<key>.lock`. A lock held by a live process is refused, naming the holder. A lock
    /// whose holder is dead (or on another host) is taken over only with `take_over`, or when its holder was
    /// a session of `resuming` (the run being resumed).
    pub fn acquire(
        locks: &Path,
        key: &str,
        info: LockInfo,
        take_over: bool,
        resuming: Option<&str>,
    ) -> Result<(RunLock, Option<TakenOver>), JournalError> {
        private_dir(locks)?;
        let path = locks.join(format!("{key}.lock"));
        let mut taken = None;
        for round in 0..5 {
            match private_file().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let text = serde_json::to_string_pretty(&info).unwrap_or_default();
                    if let Err(e) = f.write_all(text.as_bytes()).and_then(|()| f.sync_all()) {
                        // a full disk: leave no empty lock behind to strand the next run
                        drop(f);
                        let _ = fs::remove_file(&path);
                        return Err(JournalError::Io { what: "cannot write the run lock", path, source: e });
                    }
                    sync_dir(locks);
                    return Ok((RunLock { path, info }, taken));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(JournalError::Io { what: "cannot create the run lock", path, source: e }),
            }
            let Some((raw, holder)) = read_holder(&path)? else { continue }; // removed meanwhile: try again
            let damaged = holder.is_none();
            if damaged && round < 2 && young(&path) {
                // being written by the process that just created it: give it a moment
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
            let holder = holder.unwrap_or_else(|| damaged_holder(&path));
            let here = super::meta::hostname();
            let ended = !damaged && run_ended(locks, &holder.run_id);
            let alive = !damaged && !ended && holder.host == here && pid_alive(holder.pid);
            if alive {
                return Err(already_running(&holder, &path));
            }
            let same_run = !damaged && resuming.is_some_and(|r| r == holder.run_id) && holder.host == here;
            if !(take_over || same_run || ended) {
                let why = if damaged {
                    "a lock file that is empty or damaged (a crash or a full disk while it was written): a stale \
                     lock"
                        .to_string()
                } else if holder.host == here {
                    "a process that is no longer running".to_string()
                } else {
                    format!("a process on another host ({}), which cannot be checked from here", holder.host)
                };
                let who = if damaged { String::new() } else { format!(": {}", holder.who()) };
                return Err(JournalError::Locked(format!(
                    "runbook `{}` is locked by {why}{who}.\n\
                     If nobody is running this recovery any more, pass --take-over-lock to take the lock over \
                     (this is recorded in the journal). (lock: {})",
                    holder.runbook,
                    path.display()
                )));
            }
            // take it over: move the stale file aside, then check it was the one we judged stale
            let aside = locks.join(format!(".{key}.stale-{}", std::process::id()));
            match fs::rename(&path, &aside) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(JournalError::Io { what: "cannot take over the run lock", path, source: e }),
            }
            let moved = read_holder(&aside)?.map(|(raw, _)| raw);
            if moved.as_deref() != Some(raw.as_slice()) {
                // another process took it over meanwhile: put its lock back and look again
                let _ = fs::rename(&aside, &path);
                continue;
            }
            let _ = fs::remove_file(&aside);
            let reason = if ended {
                format!(
                    "run {} had ended (its journal records run_finished); its process (pid {}) had not removed \
                     the lock",
                    holder.run_id, holder.pid
                )
            } else if damaged {
                "--take-over-lock: the lock file was empty or damaged (a stale lock)".to_string()
            } else if same_run && !take_over {
                format!(
                    "resuming run {}: its previous session (pid {}) is no longer running",
                    holder.run_id, holder.pid
                )
            } else if holder.host == here {
                format!("--take-over-lock: pid {} is no longer running on {here}", holder.pid)
            } else {
                format!("--take-over-lock: the holder was on another host ({})", holder.host)
            };
            taken = Some(TakenOver { previous: holder, reason });
        }
        Err(JournalError::Locked(format!(
            "could not take the run lock {}: other processes keep changing it",
            path.display()
        )))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self) -> &LockInfo {
        &self.info
    }
}

impl RunLock {
    /// Removes the lock file if it is still this lock's (a take-over may have replaced it).
    fn release(&self) {
        if let Ok(Some((_, Some(h)))) = read_holder(&self.path)
            && h.run_id == self.info.run_id
            && h.pid == self.info.pid
        {
            let _ = fs::remove_file(&self.path);
            if let Some(dir) = self.path.parent() {
                sync_dir(dir);
            }
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        self.release();
    }
}

/// A run lock shared by the session (released when it ends) and the journal (released when `run_finished` is
/// recorded, so a process that lingers after its run ended, or is killed then, does not keep it).
#[derive(Debug, Clone)]
pub struct SharedLock(Arc<Mutex<Option<RunLock>>>);

impl SharedLock {
    pub fn new(lock: RunLock) -> Self {
        Self(Arc::new(Mutex::new(Some(lock))))
    }

    /// Releases the lock now (idempotent).
    pub fn release(&self) {
        let lock = self.0.lock().map(|mut g| g.take()).unwrap_or_else(|p| p.into_inner().take());
        drop(lock);
    }
}

/// Whether the journal of run `run_id` (beside `locks/`, under `runs/`) records that its last session finished.
fn run_ended(locks: &Path, run_id: &str) -> bool {
    // the id comes from a file: only a plain name may become a path
    let plain = !run_id.is_empty() && run_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plain {
        return false;
    }
    let Some(dir) = locks.parent().map(|root| root.join("runs").join(run_id)) else { return false };
    match super::read::read_journal(&dir) {
        Ok(read) => super::meta::last_outcome(&read).is_some(),
        Err(_) => false,
    }
}

/// Whether a file was modified in the last two seconds (a lock file being written right now).
fn young(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < std::time::Duration::from_secs(2))
}

/// Who holds a lock file that cannot be parsed: nobody known.
fn damaged_holder(path: &Path) -> LockInfo {
    LockInfo {
        user: "unknown".into(),
        host: super::meta::hostname(),
        pid: 0,
        since: fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| Timestamp::try_from(t).ok())
            .unwrap_or_default(),
        run_id: "unknown (the lock file is empty or damaged)".into(),
        runbook: path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
    }
}

/// A lock file's bytes, and its holder when they parse.
type RawHolder = (Vec<u8>, Option<LockInfo>);

/// A lock file's bytes and its holder; `None` if the file is gone. The holder is `None` when the file cannot be
/// parsed (empty, not JSON, not UTF-8: a crash or a full disk between creating and writing it).
fn read_holder(path: &Path) -> Result<Option<RawHolder>, JournalError> {
    use std::io::Read;
    match fs::File::open(path) {
        Ok(f) => {
            let mut raw = Vec::new();
            f.take(64 * 1024).read_to_end(&mut raw).map_err(JournalError::io("cannot read the run lock", path))?;
            let holder = serde_json::from_slice(&raw).ok();
            Ok(Some((raw, holder)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(JournalError::Io { what: "cannot read the run lock", path: path.to_path_buf(), source: e }),
    }
}

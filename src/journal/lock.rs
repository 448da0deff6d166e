//! The run lock: one active run of a runbook per account and region set. A file created atomically (`O_EXCL`)
//! under `locks/`, holding who runs it; removed when the run ends. A lock left by a process that died is detected
//! (its pid is not alive on this host) and can be taken over explicitly.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{JournalError, private_dir, private_file, sync_dir};

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

impl RunLock {
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
                    f.write_all(text.as_bytes())
                        .and_then(|()| f.sync_all())
                        .map_err(JournalError::io("cannot write the run lock", &path))?;
                    sync_dir(locks);
                    return Ok((RunLock { path, info }, taken));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(JournalError::Io { what: "cannot create the run lock", path, source: e }),
            }
            let holder = read_holder(&path)?;
            let Some(holder) = holder else { continue }; // removed meanwhile: try again
            if holder.pid == 0 && round < 3 {
                // being written by the process that just created it: give it a moment
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
            let here = super::session::hostname();
            let alive = holder.host == here && pid_alive(holder.pid);
            if alive {
                return Err(JournalError::Locked(format!(
                    "runbook `{}` is already running on this account and regions: {}.\n\
                     Only one run at a time may change these resources. Follow it with `drconsole watch {}`, \
                     or wait for it to finish. (lock: {})",
                    holder.runbook,
                    holder.who(),
                    holder.run_id,
                    path.display()
                )));
            }
            let same_run = resuming.is_some_and(|r| r == holder.run_id) && holder.host == here;
            if !(take_over || same_run) {
                let why = if holder.host == here {
                    "a process that is no longer running".to_string()
                } else {
                    format!("a process on another host ({}), which cannot be checked from here", holder.host)
                };
                return Err(JournalError::Locked(format!(
                    "runbook `{}` is locked by {why}: {}.\n\
                     If nobody is running this recovery any more, pass --take-over-lock to take the lock over \
                     (this is recorded in the journal). (lock: {})",
                    holder.runbook,
                    holder.who(),
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
            let moved = read_holder(&aside)?;
            if moved.as_ref() != Some(&holder) {
                // another process took it over meanwhile: put its lock back and look again
                let _ = fs::rename(&aside, &path);
                continue;
            }
            let _ = fs::remove_file(&aside);
            let reason = if same_run && !take_over {
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

impl Drop for RunLock {
    fn drop(&mut self) {
        // remove it only if it is still ours (a take-over may have replaced it)
        if let Ok(Some(h)) = read_holder(&self.path)
            && h.run_id == self.info.run_id
            && h.pid == self.info.pid
        {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The holder recorded in a lock file; `None` if the file is gone. A file that cannot be parsed (a crash between
/// creating and writing it) is reported as held by an unknown dead process.
fn read_holder(path: &Path) -> Result<Option<LockInfo>, JournalError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).unwrap_or_else(|_| {
            LockInfo {
                user: "unknown".into(),
                host: super::session::hostname(),
                pid: 0,
                since: fs::metadata(path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| Timestamp::try_from(t).ok())
                    .unwrap_or_default(),
                run_id: "unknown (the lock file is empty or damaged)".into(),
                runbook: path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            }
        }))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(JournalError::Io { what: "cannot read the run lock", path: path.to_path_buf(), source: e }),
    }
}

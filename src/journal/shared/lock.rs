//! The run lock on S3: one object per runbook, account and region set (`<prefix>/locks/<key>.json`), created with
//! `If-None-Match: *` so that of two hosts racing for it exactly one wins, holding who, where, the run id and a
//! heartbeat.
//!
//! Rules:
//! - The holder rewrites it every heartbeat interval with `If-Match` on the ETag it last wrote. A 412 there means
//!   another session took the lock over: the holder is fenced off (its journal mirror refuses every further record,
//!   and the session stops before the engine acts on one).
//! - A lock whose heartbeat is fresh is never taken over. A stale one (no heartbeat for the stale window, by S3's
//!   `Last-Modified` and the holder's own time, whichever is later) is taken over only with `--take-over-lock`, or
//!   by a resume of the same run from the same host whose process is gone; the takeover is a write with `If-Match`
//!   on the ETag that was judged stale, so two hosts taking over at once cannot both win.
//! - Released (deleted with `If-Match`) when the session ends; the heartbeat is stopped first and an in-flight
//!   heartbeat is waited for, so the delete matches the last ETag.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::store::{Ops, Put, Store};
use crate::journal::base::JournalError;
use crate::journal::lock::{LockInfo, TakenOver, pid_alive};

/// What the lock object holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SharedLockInfo {
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub run_id: String,
    pub runbook: String,
    pub since: Timestamp,
    pub heartbeat: Timestamp,
    /// Tells this session's writes from another session of the same run on the same host.
    pub token: String,
}

impl SharedLockInfo {
    pub fn who(&self) -> String {
        format!(
            "user {} on host {}, pid {}, since {} (run {})",
            self.user,
            self.host,
            self.pid,
            self.since.strftime("%Y-%m-%d %H:%M:%SZ"),
            self.run_id
        )
    }

    fn as_local(&self) -> LockInfo {
        LockInfo {
            user: self.user.clone(),
            host: self.host.clone(),
            pid: self.pid,
            since: self.since,
            run_id: self.run_id.clone(),
            runbook: self.runbook.clone(),
        }
    }
}

/// Heartbeat interval and stale window.
#[derive(Debug, Clone, Copy)]
pub struct LockTiming {
    pub heartbeat: Duration,
    pub stale: Duration,
}

/// Shared between the held lock, its heartbeat task and the journal mirror.
#[derive(Debug)]
pub struct LockState {
    pub key: String,
    pub url: String,
    etag: tokio::sync::Mutex<String>,
    /// Set when another session took the lock over: who holds it now.
    lost: std::sync::Mutex<Option<String>>,
    stop: AtomicBool,
}

impl LockState {
    /// `Some(holder)` once the lock was taken over by another session.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set_lost(&self, who: String) {
        *self.lost.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(who);
    }
}

/// A held S3 run lock; released when dropped.
pub struct SharedLock {
    store: Arc<Store>,
    pub state: Arc<LockState>,
    pub info: SharedLockInfo,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for SharedLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLock").field("key", &self.state.key).field("info", &self.info).finish()
    }
}

fn age(holder: &SharedLockInfo, last_modified: Option<Timestamp>) -> Duration {
    let last = last_modified.map_or(holder.heartbeat, |m| m.max(holder.heartbeat));
    Duration::try_from(Timestamp::now().duration_since(last)).unwrap_or_default()
}

fn unreachable(url: &str, e: &super::store::StoreError) -> JournalError {
    JournalError::Shared(format!("cannot reach the shared state {url} to take the run lock: {e}"))
}

/// Takes the lock `key` for `info`. Refused (exit 4) while a live holder heartbeats; a stale one is taken over
/// only with `take_over`, or when `resuming` names the holder's run and its process is gone from this host.
pub fn acquire(
    store: &Arc<Store>,
    url: &str,
    key: &str,
    info: SharedLockInfo,
    take_over: bool,
    resuming: Option<&str>,
    timing: LockTiming,
) -> Result<(SharedLock, Option<TakenOver>), JournalError> {
    let body = |i: &SharedLockInfo| serde_json::to_vec_pretty(i).unwrap_or_default();
    let mut taken = None;
    for _ in 0..6 {
        let ops = store.ops.clone();
        let (k, b) = (key.to_string(), body(&info));
        let put =
            store.block(async move { ops.put_conditional(&k, b, None).await }).map_err(|e| unreachable(url, &e))?;
        if let Put::Written(etag) = put {
            return Ok((start(store, url, key, info, etag, timing), taken));
        }
        let ops = store.ops.clone();
        let k = key.to_string();
        let Some(obj) = store.block(async move { ops.get(&k).await }).map_err(|e| unreachable(url, &e))? else {
            continue; // released meanwhile: try again
        };
        let holder: SharedLockInfo = match serde_json::from_slice(&obj.bytes) {
            Ok(h) => h,
            Err(e) => {
                return Err(JournalError::Locked(format!(
                    "the run lock s3://{}/{key} exists but cannot be read ({e}); remove it by hand if nobody runs \
                     this recovery",
                    store.ops.bucket
                )));
            }
        };
        if holder.token == info.token {
            // our own write landed and its answer was lost (the SDK retried it into a 412)
            return Ok((start(store, url, key, info, obj.etag, timing), taken));
        }
        let age = age(&holder, obj.last_modified);
        let ago = crate::util::fmt_duration(age);
        if age < timing.stale {
            return Err(JournalError::Locked(format!(
                "runbook `{}` is already running on this account and regions: {}; its last heartbeat was {ago} ago.\n\
                 Only one run at a time may change these resources, from any host. Follow it with \
                 `drconsole watch {} --shared-state {url}`, or wait for it to finish. (lock: s3://{}/{key})",
                holder.runbook,
                holder.who(),
                holder.run_id,
                store.ops.bucket
            )));
        }
        let here = crate::journal::meta::hostname();
        let same_run_dead =
            resuming.is_some_and(|r| r == holder.run_id) && holder.host == here && !pid_alive(holder.pid);
        if !(take_over || same_run_dead) {
            return Err(JournalError::Locked(format!(
                "runbook `{}` is locked by {}; its last heartbeat was {ago} ago (stale after {}).\n\
                 If nobody is running this recovery any more, pass --take-over-lock to take the lock over (this is \
                 recorded in the journal). (lock: s3://{}/{key})",
                holder.runbook,
                holder.who(),
                crate::util::fmt_duration(timing.stale),
                store.ops.bucket
            )));
        }
        let ops = store.ops.clone();
        let (k, b, etag) = (key.to_string(), body(&info), obj.etag.clone());
        let put = store
            .block(async move { ops.put_conditional(&k, b, Some(&etag)).await })
            .map_err(|e| unreachable(url, &e))?;
        match put {
            Put::Written(etag) => {
                let reason = if take_over {
                    format!("--take-over-lock: the shared lock's last heartbeat was {ago} ago")
                } else {
                    format!(
                        "resuming run {}: its previous session (pid {}) is no longer running",
                        holder.run_id, holder.pid
                    )
                };
                taken = Some(TakenOver { previous: holder.as_local(), reason });
                return Ok((start(store, url, key, info, etag, timing), taken));
            }
            // another host took it over (or its holder heartbeated) between our read and our write: look again
            Put::Refused => continue,
        }
    }
    Err(JournalError::Locked(format!(
        "could not take the run lock s3://{}/{key}: other sessions keep changing it",
        store.ops.bucket
    )))
}

fn start(
    store: &Arc<Store>,
    url: &str,
    key: &str,
    info: SharedLockInfo,
    etag: String,
    timing: LockTiming,
) -> SharedLock {
    let state = Arc::new(LockState {
        key: key.to_string(),
        url: url.to_string(),
        etag: tokio::sync::Mutex::new(etag),
        lost: std::sync::Mutex::new(None),
        stop: AtomicBool::new(false),
    });
    let task = store.handle().spawn(heartbeat(store.ops.clone(), state.clone(), info.clone(), timing.heartbeat));
    SharedLock { store: store.clone(), state, info, heartbeat: Some(task) }
}

async fn heartbeat(ops: Ops, state: Arc<LockState>, mut info: SharedLockInfo, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let mut etag = state.etag.lock().await;
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
        info.heartbeat = Timestamp::now();
        let body = serde_json::to_vec_pretty(&info).unwrap_or_default();
        match ops.put_conditional(&state.key, body, Some(&etag)).await {
            Ok(Put::Written(new)) => *etag = new,
            Ok(Put::Refused) => {
                let who = match ops.get(&state.key).await {
                    Ok(Some(o)) => match serde_json::from_slice::<SharedLockInfo>(&o.bytes) {
                        // our own heartbeat landed and its answer was lost: carry on from its ETag
                        Ok(h) if h.token == info.token => {
                            *etag = o.etag;
                            continue;
                        }
                        Ok(h) => h.who(),
                        Err(_) => "an unreadable lock".into(),
                    },
                    Ok(None) => "nobody (the lock was removed)".into(),
                    // cannot tell yet: look again next beat
                    Err(_) => continue,
                };
                eprintln!("drconsole: the run lock on {} was taken over by {who}", state.url);
                state.set_lost(who);
                return;
            }
            // S3 unreachable: try again next beat (the journal's records wait for S3 meanwhile)
            Err(_) => {}
        }
    }
}

impl Drop for SharedLock {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if self.state.lost().is_some() {
            return;
        }
        let (ops, state) = (self.store.ops.clone(), self.state.clone());
        let task = self.heartbeat.take();
        let r = self.store.block(async move {
            // wait for a heartbeat in flight, so the delete matches the ETag it wrote
            let etag = state.etag.lock().await;
            if let Some(t) = task {
                t.abort();
            }
            ops.delete_if_match(&state.key, &etag).await
        });
        if let Err(e) = r {
            eprintln!(
                "drconsole: could not release the run lock s3://{}/{}: {e}; it goes stale and can be taken over",
                self.store.ops.bucket, self.state.key
            );
        }
    }
}

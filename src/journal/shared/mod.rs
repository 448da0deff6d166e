//! Team state on S3 (`--shared-state s3://BUCKET/PREFIX`): a run's journal, meta, runbook copy, simulator world
//! and reports mirrored under the prefix, the run lock an S3 object, so that any host with credentials can list,
//! watch, report on and resume a run.
//!
//! Layout under the prefix:
//!
//! ```text
//! runs/<run-id>/journal/<seq:020>.jsonl   one object per journal record, the exact line (with its crc), written once
//! runs/<run-id>/meta.json                 the run's meta.json (rewritten by the lock holder at each session)
//! runs/<run-id>/runbook/<n>-<file>, runbook.sha256   the runbook text as it ran, written once
//! runs/<run-id>/world.json                the simulator's world, at each checkpoint (simulated runs)
//! runs/<run-id>/report.md|json, junit.xml when a session ends, or by `drconsole report`
//! locks/<runbook>--<account>--<primary>--<secondary>.json   the run lock (see `lock.rs`)
//! ```
//!
//! Rules:
//! - Every record the local journal fsyncs (see `journal/mod.rs`) is on S3 before the sink returns, so before the
//!   engine acts on it; the other records are queued to the same ordered uploader and may lag. Uploads are
//!   strictly in record order, so S3 always holds a gap-free prefix of the journal.
//! - S3 unreachable mid-run: the run pauses in place (the sink waits; nothing is acted on unrecorded), retrying
//!   with a backoff, and goes on when S3 answers; the pause is journalled. If S3 stays away longer than the wait
//!   window (`DRCONSOLE_SHARED_STATE_WAIT`, default 5m), the session stops with exit 1 and the reason, before the
//!   engine acts on the record S3 does not have (the journal halts the emitter: no later event is recorded, the
//!   engine stops, a step's next cloud call is refused; the error reaches `main` as the run's [`crate::run::Halt`]);
//!   its local journal keeps everything and `drconsole resume` uploads what S3 missed (catch-up) before it goes on.
//! - One history: a resume takes the lock, then rebuilds the local journal from S3 (or uploads what only this
//!   host has, when S3 holds a prefix of it) and appends after the last record. A session whose lock was taken over
//!   is fenced off: the next record is refused (the heartbeat saw the takeover, or the record object already
//!   exists with other bytes) and the session stops with exit 4.
//! - Where the state lives is set once per process by `main` ([`configure`]), from `--shared-state` /
//!   `DRCONSOLE_SHARED_STATE` or a runbook's `[state]` section; a resumed run also finds it in its meta.json.

mod lock;
mod store;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc;

use super::base::{JournalError, Note, StateDir, private_dir, write_atomic};
use super::meta::Meta;
use super::read::{Record, decode};
use super::runs::RunSummary;
use crate::engine::Event;
pub use lock::{LockTiming, SharedLock, SharedLockInfo};
pub use store::{Connect, Store, StoreError};

/// `--shared-state` as an environment variable.
pub const SHARED_STATE_ENV: &str = "DRCONSOLE_SHARED_STATE";
/// How long a run waits for an unreachable S3 before the session stops (a duration: 90s, 5m).
pub const WAIT_ENV: &str = "DRCONSOLE_SHARED_STATE_WAIT";
/// How often the lock holder heartbeats (default 15s).
pub const HEARTBEAT_ENV: &str = "DRCONSOLE_SHARED_LOCK_HEARTBEAT";
/// After how long without a heartbeat a lock is stale (default 60s).
pub const STALE_ENV: &str = "DRCONSOLE_SHARED_LOCK_STALE";

/// Where the shared state lives (a type of meta.json, kept in the journal's leaf module).
pub use super::meta::SharedConfig;

static CONFIG: OnceLock<Mutex<Option<SharedConfig>>> = OnceLock::new();

fn config_slot() -> std::sync::MutexGuard<'static, Option<SharedConfig>> {
    CONFIG.get_or_init(|| Mutex::new(None)).lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sets where this process keeps shared state (`None`: nowhere, local only). Called by `main`.
pub fn configure(c: Option<SharedConfig>) {
    *config_slot() = c;
}

/// Where this process keeps shared state, if anywhere.
pub fn configured() -> Option<SharedConfig> {
    config_slot().clone()
}

fn env_duration(name: &str, default: Duration) -> Duration {
    std::env::var(name).ok().and_then(|v| crate::util::parse_duration(&v).ok()).unwrap_or(default)
}

fn timing() -> LockTiming {
    LockTiming {
        heartbeat: env_duration(HEARTBEAT_ENV, Duration::from_secs(15)),
        stale: env_duration(STALE_ENV, Duration::from_secs(60)),
    }
}

fn wait_window() -> Duration {
    env_duration(WAIT_ENV, Duration::from_secs(300))
}

/// An open connection to the shared state.
pub struct Shared {
    pub cfg: SharedConfig,
    pub store: Arc<Store>,
    prefix: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("url", &self.cfg.url).finish_non_exhaustive()
    }
}

fn shared_err(url: &str, e: &StoreError) -> JournalError {
    JournalError::Shared(format!("shared state {url}: {e}"))
}

impl Shared {
    /// Connects (nothing is called yet). `default_region`: the runbook's secondary region when known.
    pub fn open(cfg: &SharedConfig, default_region: Option<&str>) -> Result<Arc<Shared>, JournalError> {
        let (bucket, prefix) =
            cfg.split().map_err(|e| JournalError::Usage(format!("--shared-state {}: {e}", cfg.url)))?;
        let region = cfg
            .region
            .clone()
            .or_else(|| default_region.map(str::to_string))
            .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok().filter(|r| !r.is_empty()))
            .ok_or_else(|| {
                JournalError::Usage(format!(
                    "--shared-state {}: which region is the bucket in? pass --shared-state-region REGION (or set \
                     AWS_REGION)",
                    cfg.url
                ))
            })?;
        let c = Connect {
            bucket,
            region,
            kms_key: cfg.kms_key.clone(),
            profile: cfg.profile.clone(),
            endpoint_url: cfg.endpoint_url.clone(),
        };
        let store = Store::connect(&c).map_err(JournalError::Shared)?;
        Ok(Arc::new(Shared { cfg: cfg.clone(), store, prefix }))
    }

    /// A key under the prefix.
    pub fn key(&self, rest: &str) -> String {
        if self.prefix.is_empty() { rest.to_string() } else { format!("{}/{rest}", self.prefix) }
    }

    /// An object under the prefix (`rest`), for state beside the runs (the DR inventory); `None` when absent.
    pub fn get_object(&self, rest: &str) -> Result<Option<Vec<u8>>, JournalError> {
        Ok(self.get(self.key(rest))?.map(|o| o.bytes))
    }

    /// Writes (or replaces) an object under the prefix (`rest`), waiting out an unreachable S3 like a journal write.
    pub fn put_object(&self, rest: &str, bytes: Vec<u8>) -> Result<(), JournalError> {
        self.put_waiting(self.key(rest), bytes, false)
    }

    /// The objects under `rest` (a folder under the prefix, ending in `/`), as paths after the prefix.
    pub fn list_objects(&self, rest: &str) -> Result<Vec<String>, JournalError> {
        let ops = self.store.ops.clone();
        let prefix = self.key(rest);
        let base = self.key("");
        let keys = self
            .store
            .block(async move { ops.list(&prefix, None).await })
            .map_err(|e| shared_err(&self.cfg.url, &e))?;
        Ok(keys.into_iter().map(|k| k.strip_prefix(&base).map_or(k.clone(), str::to_string)).collect())
    }

    fn run_key(&self, run_id: &str, rest: &str) -> String {
        self.key(&format!("runs/{run_id}/{rest}"))
    }

    fn get(&self, key: String) -> Result<Option<store::Object>, JournalError> {
        let ops = self.store.ops.clone();
        self.store.block(async move { ops.get(&key).await }).map_err(|e| shared_err(&self.cfg.url, &e))
    }

    fn put(&self, key: String, bytes: Vec<u8>) -> Result<(), JournalError> {
        let ops = self.store.ops.clone();
        self.store
            .block(async move { ops.put(&key, bytes).await.map(|_| ()) })
            .map_err(|e| shared_err(&self.cfg.url, &e))
    }

    /// Writes an object once; an existing object with the same bytes is fine, other bytes are an error.
    fn put_once(&self, key: String, bytes: Vec<u8>) -> Result<(), JournalError> {
        self.put_waiting(key, bytes, true)
    }

    /// Writes an object (once, or replacing it), waiting out an unreachable S3 for up to the wait window.
    fn put_waiting(&self, key: String, bytes: Vec<u8>, once: bool) -> Result<(), JournalError> {
        let ops = self.store.ops.clone();
        let url = self.cfg.url.clone();
        let wait = wait_window();
        self.store
            .block(async move { put_record(&ops, &url, &key, bytes, wait, once).await.map(|_| ()) })
            .map_err(|e| fail_error(&e))
    }

    /// The run ids under the prefix, oldest first.
    pub fn run_ids(&self) -> Result<Vec<String>, JournalError> {
        let ops = self.store.ops.clone();
        let prefix = self.key("runs/");
        self.store.block(async move { ops.list_dirs(&prefix).await }).map_err(|e| shared_err(&self.cfg.url, &e))
    }

    /// A run id from an id, a unique prefix of one, or `last`.
    pub fn find_run_id(&self, run: &str) -> Result<String, JournalError> {
        let ids = self.run_ids()?;
        let id = Path::new(run).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if run == "last" {
            return ids
                .last()
                .cloned()
                .ok_or_else(|| JournalError::NotFound(format!("no runs under {}", self.cfg.url)));
        }
        if ids.contains(&id) {
            return Ok(id);
        }
        let matching: Vec<&String> = ids.iter().filter(|i| i.starts_with(&id)).collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(JournalError::NotFound(format!(
                "no run `{run}` under {} (`drconsole runs --shared-state {}` lists them)",
                self.cfg.url, self.cfg.url
            ))),
            many => Err(JournalError::Usage(format!(
                "`{run}` matches {} runs under {} ({}); give more of the id",
                many.len(),
                self.cfg.url,
                many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// The run's meta.json on S3.
    pub fn meta(&self, run_id: &str) -> Result<Meta, JournalError> {
        let key = self.run_key(run_id, "meta.json");
        let obj = self
            .get(key.clone())?
            .ok_or_else(|| JournalError::NotFound(format!("run {run_id} has no meta.json under {}", self.cfg.url)))?;
        serde_json::from_slice(&obj.bytes).map_err(|e| JournalError::Corrupt {
            path: PathBuf::from(format!("s3://{}/{key}", self.store.ops.bucket)),
            line: e.line(),
            reason: e.to_string(),
        })
    }

    /// The run's journal on S3, each record's line (with its newline), checked: object names and record numbers
    /// follow on from 1 with no gap, every checksum holds.
    pub fn journal_lines(&self, run_id: &str) -> Result<Vec<String>, JournalError> {
        let ops = self.store.ops.clone();
        let prefix = self.run_key(run_id, "journal/");
        let url = self.cfg.url.clone();
        let objects = self
            .store
            .block(async move {
                let keys = ops.list(&prefix, None).await?;
                let mut set = tokio::task::JoinSet::new();
                let mut out: Vec<(String, Option<Vec<u8>>)> = Vec::new();
                for (i, k) in keys.into_iter().enumerate() {
                    let ops = ops.clone();
                    set.spawn(async move { ops.get(&k).await.map(|o| (i, k, o.map(|o| o.bytes))) });
                    if set.len() >= 16 {
                        push_done(&mut set, &mut out).await?;
                    }
                }
                while !set.is_empty() {
                    push_done(&mut set, &mut out).await?;
                }
                Ok(out)
            })
            .map_err(|e| shared_err(&url, &e))?;
        let mut lines = Vec::new();
        for (n, (key, bytes)) in objects.into_iter().enumerate() {
            let seq = n as u64 + 1;
            let corrupt = |reason: String| JournalError::Corrupt {
                path: PathBuf::from(format!("s3://{}/{key}", self.store.ops.bucket)),
                line: 1,
                reason,
            };
            if !key.ends_with(&record_name(seq)) {
                return Err(corrupt(format!("record {seq} is missing from the shared journal (found {key})")));
            }
            let bytes = bytes.ok_or_else(|| corrupt("listed but gone".into()))?;
            let text = String::from_utf8(bytes).map_err(|_| corrupt("not UTF-8 text".into()))?;
            decode(text.trim_end_matches('\n'), seq).map_err(corrupt)?;
            lines.push(if text.ends_with('\n') { text } else { format!("{text}\n") });
        }
        Ok(lines)
    }

    fn lock_of(&self, meta: &Meta) -> Result<Option<(SharedLockInfo, Duration)>, JournalError> {
        let Some(obj) = self.get(self.key(&format!("locks/{}.json", meta.lock_key)))? else { return Ok(None) };
        let Ok(h) = serde_json::from_slice::<SharedLockInfo>(&obj.bytes) else { return Ok(None) };
        let last = obj.last_modified.map_or(h.heartbeat, |m| m.max(h.heartbeat));
        let age = Duration::try_from(Timestamp::now().duration_since(last)).unwrap_or_default();
        Ok(Some((h, age)))
    }
}

/// An object fetched for [`Shared::journal_lines`]: its index, key and bytes (`None`: gone meanwhile).
type Fetched = Result<(usize, String, Option<Vec<u8>>), StoreError>;

async fn push_done(
    set: &mut tokio::task::JoinSet<Fetched>,
    out: &mut Vec<(String, Option<Vec<u8>>)>,
) -> Result<(), StoreError> {
    if let Some(r) = set.join_next().await {
        let (i, k, b) = r.map_err(|e| StoreError {
            op: "GetObject",
            key: String::new(),
            message: e.to_string(),
            permanent: true,
        })??;
        if out.len() <= i {
            out.resize(i + 1, (String::new(), None));
        }
        out[i] = (k, b);
    }
    Ok(())
}

/// `00000000000000000042.jsonl`.
fn record_name(seq: u64) -> String {
    format!("{seq:020}.jsonl")
}

/// Why an upload did not land.
#[derive(Debug, Clone)]
struct Failure {
    fenced: bool,
    message: String,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure { fenced: false, message: e.to_string() }
    }
}

fn fail_error(f: &Failure) -> JournalError {
    if f.fenced { JournalError::Locked(f.message.clone()) } else { JournalError::Shared(f.message.clone()) }
}

/// S3 did not answer for a while, then did.
#[derive(Debug, Clone)]
pub struct Pause {
    pub since: Timestamp,
    pub until: Timestamp,
    pub reason: String,
}

/// Writes one record object once (or, unless `once`, a snapshot that replaces the last), waiting out transient
/// failures for up to `wait` (the run is paused meanwhile).
async fn put_record(
    ops: &store::Ops,
    url: &str,
    key: &str,
    bytes: Vec<u8>,
    wait: Duration,
    once: bool,
) -> Result<Option<Pause>, Failure> {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(200);
    let mut paused: Option<(Timestamp, String)> = None;
    loop {
        let put = if once {
            ops.put_conditional(key, bytes.clone(), None).await
        } else {
            ops.put(key, bytes.clone()).await.map(store::Put::Written)
        };
        let attempt = match put {
            Ok(store::Put::Written(_)) => Ok(()),
            Ok(store::Put::Refused) => match ops.get(key).await {
                // our own earlier attempt landed and its answer was lost
                Ok(Some(o)) if o.bytes == bytes => Ok(()),
                Ok(Some(_)) => {
                    return Err(Failure {
                        fenced: true,
                        message: format!(
                            "another session already wrote s3://{}/{key}: the run lock was taken over and this session \
                             is fenced off; it stops here (the run goes on in the session that holds the lock)",
                            ops.bucket
                        ),
                    });
                }
                Ok(None) => continue,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match attempt {
            Ok(()) => {
                return Ok(paused.map(|(since, reason)| {
                    eprintln!(
                        "drconsole: the shared state {url} answers again after {}; the run goes on",
                        crate::util::fmt_duration(started.elapsed())
                    );
                    Pause { since, until: Timestamp::now(), reason }
                }));
            }
            Err(e) if e.permanent => {
                return Err(Failure {
                    fenced: false,
                    message: format!(
                        "the shared state {url} refused a journal record: {e}; this session stops before the engine \
                         acts on it (check the bucket, the prefix and the IAM permissions, then `drconsole resume`)"
                    ),
                });
            }
            Err(e) => {
                if paused.is_none() {
                    eprintln!(
                        "drconsole: the shared state {url} is unreachable ({e}); the run is paused until it answers \
                         (at most {})",
                        crate::util::fmt_duration(wait)
                    );
                    paused = Some((Timestamp::now(), e.to_string()));
                }
                if started.elapsed() >= wait {
                    return Err(Failure {
                        fenced: false,
                        message: format!(
                            "the shared state {url} has been unreachable for {} ({e}); this session stops before the \
                             engine acts on a record the team's state does not have. Its local journal holds every \
                             record: `drconsole resume RUN` uploads what S3 missed when it is back",
                            crate::util::fmt_duration(started.elapsed())
                        ),
                    });
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

struct Upload {
    seq: u64,
    bytes: Vec<u8>,
    ack: Option<std::sync::mpsc::SyncSender<Result<(), Failure>>>,
}

/// The journal's mirror to S3: an ordered uploader on the store's runtime; checkpoint records wait for it.
pub struct Mirror {
    shared: Arc<Shared>,
    run_id: String,
    queue: mpsc::UnboundedSender<Upload>,
    broken: Arc<Mutex<Option<Failure>>>,
    pauses: Arc<Mutex<Vec<Pause>>>,
    lock: Option<Arc<lock::LockState>>,
}

impl Mirror {
    fn new(shared: Arc<Shared>, run_id: &str, lock: Option<Arc<lock::LockState>>) -> Mirror {
        let (tx, mut rx) = mpsc::unbounded_channel::<Upload>();
        let broken: Arc<Mutex<Option<Failure>>> = Arc::default();
        let pauses: Arc<Mutex<Vec<Pause>>> = Arc::default();
        let (ops, url, prefix) = (shared.store.ops.clone(), shared.cfg.url.clone(), shared.run_key(run_id, "journal/"));
        let (b, p) = (broken.clone(), pauses.clone());
        let wait = wait_window();
        shared.store.handle().spawn(async move {
            while let Some(u) = rx.recv().await {
                let earlier = b.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                let r = match earlier {
                    // a later record must never land after a missing one
                    Some(f) => Err(f),
                    None => {
                        put_record(&ops, &url, &format!("{prefix}{}", record_name(u.seq)), u.bytes, wait, true).await
                    }
                };
                let r = match r {
                    Ok(pause) => {
                        if let Some(pause) = pause {
                            p.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(pause);
                        }
                        Ok(())
                    }
                    Err(f) => {
                        *b.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(f.clone());
                        Err(f)
                    }
                };
                if let Some(ack) = u.ack {
                    let _ = ack.send(r);
                }
            }
        });
        Mirror { shared, run_id: run_id.to_string(), queue: tx, broken, pauses, lock }
    }

    pub fn url(&self) -> &str {
        &self.shared.cfg.url
    }

    /// Mirrors record `seq` (its line without the newline); with `wait`, returns once it is on S3.
    pub(crate) fn record(&mut self, seq: u64, line: &str, wait: bool) -> Result<(), JournalError> {
        if let Some(who) = self.lock.as_ref().and_then(|l| l.lost()) {
            return Err(JournalError::Locked(format!(
                "the run lock on {} was taken over by {who}: this session is fenced off and stops here (the run goes \
                 on in the session that holds the lock)",
                self.shared.cfg.url
            )));
        }
        if let Some(f) = self.broken.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone() {
            return Err(fail_error(&f));
        }
        let (ack, rx) = if wait {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let bytes = format!("{line}\n").into_bytes();
        self.queue
            .send(Upload { seq, bytes, ack })
            .map_err(|_| JournalError::Shared("the shared-state uploader stopped".into()))?;
        if let Some(rx) = rx {
            match rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(f)) => return Err(fail_error(&f)),
                Err(_) => return Err(JournalError::Shared("the shared-state uploader stopped".into())),
            }
        }
        Ok(())
    }

    /// Pauses (S3 unreachable for a while) since the last call, to be journalled.
    pub(crate) fn take_pauses(&self) -> Vec<Note> {
        let mut p = self.pauses.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        p.drain(..)
            .map(|p| Note::SharedStatePaused {
                url: self.shared.cfg.url.clone(),
                since: p.since,
                until: p.until,
                reason: p.reason,
            })
            .collect()
    }

    /// Mirrors a snapshot file of the run directory (world.json), waiting for it.
    pub(crate) fn snapshot(&self, name: &str, bytes: &[u8]) -> Result<(), JournalError> {
        self.shared.put_waiting(self.shared.run_key(&self.run_id, name), bytes.to_vec(), false)
    }

    /// Puts an object beside the runs (the forecast history's record of this run: `crate::forecast::store`), best
    /// effort: the run is not affected, the reason said on stderr.
    pub(crate) fn put_beside(&self, rest: &str, bytes: Vec<u8>) {
        if let Err(e) = self.shared.put_object(rest, bytes) {
            eprintln!("drconsole: the run's forecast history record could not be copied to the shared state: {e}");
        }
    }

    /// Mirrors the reports of the run directory (best effort: they can be rebuilt from the journal).
    pub(crate) fn reports(&self, dir: &Path) {
        if let Err(e) = push_reports(&self.shared, &self.run_id, dir) {
            eprintln!("drconsole: the reports could not be copied to the shared state: {e}");
        }
    }
}

fn push_reports(shared: &Shared, run_id: &str, dir: &Path) -> Result<(), JournalError> {
    for name in ["report.md", "report.json", "junit.xml"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            shared.put(shared.run_key(run_id, name), bytes)?;
        }
    }
    Ok(())
}

/// A new or resumed run's shared state: the S3 lock held, the mirror ready.
pub struct Session {
    pub shared: Arc<Shared>,
    pub lock: SharedLock,
    pub taken: Option<super::lock::TakenOver>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("shared", &self.shared).field("lock", &self.lock).finish_non_exhaustive()
    }
}

fn lock_info(meta: &Meta) -> SharedLockInfo {
    let now = Timestamp::now();
    SharedLockInfo {
        user: super::meta::username(),
        host: super::meta::hostname(),
        pid: std::process::id(),
        run_id: meta.run_id.clone(),
        runbook: meta.runbook.clone(),
        since: now,
        heartbeat: now,
        token: format!("{:016x}", fastrand::u64(..)),
    }
}

impl Session {
    /// A mirror for the run's journal, fenced by this session's lock.
    pub fn mirror(&self, run_id: &str) -> Mirror {
        Mirror::new(self.shared.clone(), run_id, Some(self.lock.state.clone()))
    }

    /// The note that says where the run's state lives.
    pub fn note(&self) -> Note {
        Note::SharedState { url: self.shared.cfg.url.clone(), at: Timestamp::now() }
    }

    /// Copies a new run's runbook text (written once) and meta.json.
    pub fn push_new_run(&self, dir: &Path, meta: &Meta) -> Result<(), JournalError> {
        let mut names = meta.files.clone();
        names.push("runbook.sha256".into());
        for name in names {
            let p = dir.join(&name);
            let bytes = std::fs::read(&p).map_err(JournalError::io("cannot read", &p))?;
            self.shared.put_once(self.shared.run_key(&meta.run_id, &name), bytes)?;
        }
        self.push_meta(meta)
    }

    /// Replaces meta.json on S3.
    pub fn push_meta(&self, meta: &Meta) -> Result<(), JournalError> {
        let text = serde_json::to_vec_pretty(meta).unwrap_or_default();
        self.shared.put(self.shared.run_key(&meta.run_id, "meta.json"), text)
    }
}

/// Opens the shared state for `cfg`, when one is configured (for a new run: `meta` filled in, the run directory
/// not yet created). Takes the S3 lock.
pub fn begin_new(meta: &mut Meta, take_over: bool) -> Result<Option<Session>, JournalError> {
    let Some(cfg) = meta.settings.shared_state.clone().or_else(configured) else { return Ok(None) };
    let shared = Shared::open(&cfg, Some(&meta.secondary))?;
    meta.settings.shared_state = Some(cfg);
    let key = shared.key(&format!("locks/{}.json", meta.lock_key));
    let (lock, taken) =
        lock::acquire(&shared.store, &shared.cfg.url, &key, lock_info(meta), take_over, None, timing())?;
    Ok(Some(Session { shared, lock, taken }))
}

/// For a resume: when the run has shared state (configured for this process, or recorded in the local copy of
/// the run), finds the run on S3, takes the S3 lock and brings the local run directory in line with S3 (rebuilt
/// from it, or S3 caught up with what only this host has). Returns the run directory and the session.
pub fn begin_resume(state: &StateDir, run: &str, take_over: bool) -> Result<Option<(PathBuf, Session)>, JournalError> {
    let local = match configured() {
        // the run is looked up on S3; a local copy counts only under its exact id
        Some(_) => Some(state.runs().join(run)).filter(|d| d.join("meta.json").is_file()),
        None => state.find_run(run).ok(),
    };
    let local_meta = local.as_deref().and_then(|d| Meta::read(d).ok());
    let cfg = configured().or_else(|| local_meta.as_ref().and_then(|m| m.settings.shared_state.clone()));
    let Some(cfg) = cfg else { return Ok(None) };
    let shared = Shared::open(&cfg, local_meta.as_ref().map(|m| m.secondary.as_str()))?;
    let run_id = match &local_meta {
        Some(m) => m.run_id.clone(),
        None => shared.find_run_id(run)?,
    };
    let meta = match (shared.meta(&run_id), &local_meta) {
        (Ok(m), _) => m,
        // the run started before S3 answered: this host's copy is all there is
        (Err(JournalError::NotFound(_)), Some(m)) => m.clone(),
        (Err(e), _) => return Err(e),
    };
    let key = shared.key(&format!("locks/{}.json", meta.lock_key));
    let (lock, taken) =
        lock::acquire(&shared.store, &shared.cfg.url, &key, lock_info(&meta), take_over, Some(&run_id), timing())?;
    let session = Session { shared, lock, taken };
    let dir = state.runs().join(&run_id);
    sync_local(&session.shared, &run_id, &dir, true)?;
    Ok(Some((dir, session)))
}

/// Brings `dir` in line with the run on S3. S3 holds the one history: a local journal that S3 extends is
/// replaced by S3's; one that extends S3's (this host wrote records S3 missed) is uploaded when `may_upload`
/// (the lock is held); one that disagrees is moved aside and replaced.
fn sync_local(shared: &Shared, run_id: &str, dir: &Path, may_upload: bool) -> Result<(), JournalError> {
    private_dir(dir)?;
    let remote = shared.journal_lines(run_id)?;
    let path = dir.join("journal.jsonl");
    let local_bytes = std::fs::read(&path).ok();
    let local: Vec<String> = match &local_bytes {
        Some(b) => {
            let valid = super::read::parse(&path, b).map(|r| r.valid_len).unwrap_or(0);
            String::from_utf8_lossy(&b[..valid]).split_inclusive('\n').map(str::to_string).collect()
        }
        None => Vec::new(),
    };
    let common = remote.iter().zip(&local).take_while(|(a, b)| a == b).count();
    let mut rebuilt = false;
    if common == local.len() {
        if remote.len() > local.len() || local_bytes.is_none() {
            write_atomic(&path, remote.concat().as_bytes())?;
            rebuilt = true;
        }
    } else if common == remote.len() {
        if may_upload {
            let prefix = shared.run_key(run_id, "journal/");
            for (i, line) in local.iter().enumerate().skip(remote.len()) {
                shared.put_once(format!("{prefix}{}", record_name(i as u64 + 1)), line.clone().into_bytes())?;
            }
            eprintln!(
                "drconsole: caught up: {} journal record(s) this host wrote while {} was unreachable are now there",
                local.len() - remote.len(),
                shared.cfg.url
            );
        }
    } else {
        let aside = dir.join(format!("journal.jsonl.diverged-{}", Timestamp::now().as_second()));
        std::fs::rename(&path, &aside).map_err(JournalError::io("cannot move aside", &path))?;
        write_atomic(&path, remote.concat().as_bytes())?;
        rebuilt = true;
        eprintln!(
            "drconsole: this host's journal of run {run_id} disagrees with {} after record {common}: the shared \
             journal is the run's history; the local one is kept as {}",
            shared.cfg.url,
            aside.display()
        );
    }
    // meta.json: S3's, unless this host's copy knows more sessions
    let remote_meta = shared.meta(run_id).ok();
    let local_meta = Meta::read(dir).ok();
    match (&remote_meta, &local_meta) {
        (Some(r), Some(l)) if l.sessions.len() > r.sessions.len() => {}
        (Some(r), _) => {
            write_atomic(&dir.join("meta.json"), serde_json::to_string_pretty(r).unwrap_or_default().as_bytes())?
        }
        (None, Some(_)) => {}
        (None, None) => {
            return Err(JournalError::NotFound(format!("run {run_id} has no meta.json under {}", shared.cfg.url)));
        }
    }
    let meta = Meta::read(dir)?;
    let mut files = meta.files.clone();
    files.push("runbook.sha256".into());
    for name in files {
        let p = dir.join(&name);
        if p.exists() {
            continue;
        }
        if let Some(obj) = shared.get(shared.run_key(run_id, &name))? {
            if let Some(parent) = p.parent() {
                private_dir(parent)?;
            }
            write_atomic(&p, &obj.bytes)?;
        }
    }
    if (rebuilt || !dir.join(super::base::WORLD_FILE).exists())
        && let Some(obj) = shared.get(shared.run_key(run_id, super::base::WORLD_FILE))?
    {
        write_atomic(&dir.join(super::base::WORLD_FILE), &obj.bytes)?;
    }
    Ok(())
}

/// For `report` and `runs`: the run's directory, brought up to date from S3 when shared state is configured
/// (read-only: nothing is uploaded). `None` when no shared state is configured.
pub fn pull_for_read(state: &StateDir, run: &str) -> Result<Option<PathBuf>, JournalError> {
    let Some(cfg) = configured() else { return Ok(None) };
    let shared = Shared::open(&cfg, None)?;
    let run_id = match shared.find_run_id(run) {
        Ok(id) => id,
        // not a shared run: it may be one of this host's own
        Err(JournalError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let dir = state.runs().join(&run_id);
    private_dir(&state.runs())?;
    sync_local(&shared, &run_id, &dir, false)?;
    Ok(Some(dir))
}

/// Copies a run's reports to the shared state, when one is configured (after `drconsole report`).
pub fn push_run_reports(dir: &Path) -> Result<(), JournalError> {
    let Some(cfg) = configured() else { return Ok(()) };
    let meta = Meta::read(dir)?;
    let shared = Shared::open(&cfg, Some(&meta.secondary))?;
    push_reports(&shared, &meta.run_id, dir)
}

/// `drconsole runs` on shared state: every run under the prefix (copied into the local state directory), with
/// its status from the S3 lock: `running` while a session heartbeats it, from any host.
pub fn list_runs(state: &StateDir) -> Option<Result<Vec<RunSummary>, JournalError>> {
    let cfg = configured()?;
    Some((|| {
        let shared = Shared::open(&cfg, None)?;
        private_dir(&state.runs())?;
        let stale = timing().stale;
        let mut out = Vec::new();
        for id in shared.run_ids()? {
            let dir = state.runs().join(&id);
            let mut s = match sync_local(&shared, &id, &dir, false) {
                Ok(()) => super::runs::summarize(&dir),
                Err(e) => {
                    let mut s = super::runs::summarize(&dir);
                    s.problem = Some(e.to_string());
                    s
                }
            };
            if s.status == "running" || s.status == "crashed" {
                let held = Meta::read(&dir)
                    .ok()
                    .and_then(|m| shared.lock_of(&m).ok().flatten())
                    .is_some_and(|(h, age)| h.run_id == id && age < stale);
                s.status = if held { "running" } else { "crashed" }.into();
            }
            out.push(s);
        }
        Ok(out)
    })())
}

/// `drconsole watch` on shared state: replays the run's journal from S3 and follows it as it grows, until the
/// run finishes (as the local follower does). Resolves the run first (blocking); must then be called inside a
/// tokio runtime. `None` when no shared state is configured.
pub fn follow(run: &str) -> Option<Result<(String, mpsc::UnboundedReceiver<Event>), JournalError>> {
    let cfg = configured()?;
    Some((|| {
        let shared = Shared::open(&cfg, None)?;
        let run_id = shared.find_run_id(run)?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(follow_task(shared, run_id.clone(), tx));
        Ok((run_id, rx))
    })())
}

async fn follow_task(shared: Arc<Shared>, run_id: String, tx: mpsc::UnboundedSender<Event>) {
    let prefix = shared.run_key(&run_id, "journal/");
    let mut seq = 0u64;
    let mut last_key: Option<String> = None;
    let mut finished = false;
    let mut view = crate::run::RunView::new();
    let mut delay = Duration::from_millis(100);
    let mut idle = Duration::ZERO;
    let mut told_unreachable = false;
    let mut told_stale = false;
    let stale = timing().stale;
    let mut lock_key: Option<String> = None;
    loop {
        if tx.is_closed() {
            return;
        }
        let (ops, p, after) = (shared.store.ops.clone(), prefix.clone(), last_key.clone());
        let keys = shared.store.run(async move { ops.list(&p, after.as_deref()).await }).await;
        let mut grew = false;
        match keys {
            Err(e) => {
                if !told_unreachable {
                    told_unreachable = true;
                    eprintln!("drconsole: the shared state {} is unreachable ({e}); still trying", shared.cfg.url);
                }
            }
            Ok(keys) => {
                for k in keys {
                    if !k.ends_with(&record_name(seq + 1)) {
                        break; // not there yet (uploads land in order; a listing may be a moment behind)
                    }
                    let ops = shared.store.ops.clone();
                    let key = k.clone();
                    let Ok(Some(obj)) = shared.store.run(async move { ops.get(&key).await }).await else { break };
                    let text = String::from_utf8_lossy(&obj.bytes).into_owned();
                    match decode(text.trim_end_matches('\n'), seq + 1) {
                        Ok((s, rec)) => {
                            seq = s;
                            last_key = Some(k);
                            grew = true;
                            match rec {
                                Record::Event(ev) => {
                                    // the run view says whether the run ended (a resume's run_started reopens it)
                                    view.apply(&ev);
                                    finished = view.is_finished();
                                    if tx.send(ev).is_err() {
                                        return;
                                    }
                                }
                                Record::Note(Note::Session { .. }) => {
                                    finished = false;
                                    told_stale = false;
                                }
                                Record::Note(_) => {}
                            }
                        }
                        Err(reason) => {
                            eprintln!("drconsole: s3://{}/{k}: {reason}; stopped following", shared.store.ops.bucket);
                            return;
                        }
                    }
                }
            }
        }
        if finished {
            return;
        }
        if grew {
            told_unreachable = false;
            delay = Duration::from_millis(100);
            idle = Duration::ZERO;
            continue;
        }
        idle += delay;
        if !told_stale && idle >= stale {
            if lock_key.is_none() {
                let s = shared.clone();
                let id = run_id.clone();
                lock_key =
                    tokio::task::spawn_blocking(move || s.meta(&id).ok().map(|m| m.lock_key)).await.ok().flatten();
            }
            if let Some(lk) = &lock_key {
                let (ops, key) = (shared.store.ops.clone(), shared.key(&format!("locks/{lk}.json")));
                let held = match shared.store.run(async move { ops.get(&key).await }).await {
                    Ok(Some(o)) => serde_json::from_slice::<SharedLockInfo>(&o.bytes).ok().is_some_and(|h| {
                        let last = o.last_modified.map_or(h.heartbeat, |m| m.max(h.heartbeat));
                        h.run_id == run_id
                            && Duration::try_from(Timestamp::now().duration_since(last)).unwrap_or_default() < stale
                    }),
                    _ => true, // cannot tell: say nothing
                };
                if !held {
                    told_stale = true;
                    eprintln!(
                        "drconsole: run {run_id} did not finish and nobody holds its lock any more (no heartbeat for \
                         {}); it can be resumed from any host: `drconsole resume {run_id} --shared-state {} \
                         --take-over-lock`. Still following.",
                        crate::util::fmt_duration(stale),
                        shared.cfg.url
                    );
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// The IAM statements shared state needs: read and write objects under the prefix, list the prefix, delete the
/// lock; with a KMS key, encrypt and decrypt under it.
pub fn iam_statements(cfg: &SharedConfig) -> Vec<serde_json::Value> {
    let Ok((bucket, prefix)) = cfg.split() else { return Vec::new() };
    let objects = if prefix.is_empty() {
        format!("arn:aws:s3:::{bucket}/*")
    } else {
        format!("arn:aws:s3:::{bucket}/{prefix}/*")
    };
    let list_prefix = if prefix.is_empty() { "*".to_string() } else { format!("{prefix}/*") };
    let mut out = vec![
        serde_json::json!({
            "Sid": "DrconsoleSharedStateObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": objects,
        }),
        serde_json::json!({
            "Sid": "DrconsoleSharedStateList",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": format!("arn:aws:s3:::{bucket}"),
            "Condition": { "StringLike": { "s3:prefix": [prefix.clone(), list_prefix] } },
        }),
    ];
    if let Some(k) = &cfg.kms_key {
        out.push(serde_json::json!({
            "Sid": "DrconsoleSharedStateKms",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": k,
        }));
    }
    out
}

/// The shared state a new run of `rb` uses: `--shared-state` (or its environment variable), else the runbook's
/// `[state]`; S3 is reached with the run's `--profile` unless one is set for it.
pub fn for_run(rb: &crate::runbook::Runbook, profile: Option<&str>) -> Option<SharedConfig> {
    let mut c = configured().or_else(|| rb.state.as_ref().map(SharedConfig::from_runbook))?;
    if c.profile.is_none() {
        c.profile = profile.map(str::to_string);
    }
    Some(c)
}

/// Adds the statements shared state needs to a runbook's IAM policy, when the run would use shared state.
pub fn add_iam_statements(policy: &mut serde_json::Value, rb: &crate::runbook::Runbook) {
    let Some(c) = for_run(rb, None) else { return };
    if let Some(list) = policy.get_mut("Statement").and_then(serde_json::Value::as_array_mut) {
        list.extend(iam_statements(&c));
    }
}

//! Opening a run (new or resumed): its directory, meta.json, the stored runbook, the lock and the journal sink;
//! rebuilding a run's prior state from its journal; listing runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;

use super::base::{JournalError, Note, StateDir, private_dir, private_file};
use super::lock::{LockInfo, RunLock, SharedLock, TakenOver, lock_key};
use super::meta::{Meta, RunSettings, SessionInfo, hostname, last_outcome, username};
use super::read::{JournalRead, read_journal};
use super::runs::{RunSummary, summarize};
use super::writer::{Journal, WorldStore};
use crate::actions::Registry;
use crate::engine::{
    Clock, Emitter, Engine, Outcome, PriorAnswer, PriorState, PriorStep, RunConfig, RunHandle, Status,
};
use crate::run::view::SessionView;
use crate::run::{Phase, RunView};
use crate::runbook::{self, Runbook};

/// A run ready to start: directory, lock and journal in place.
pub struct Prepared {
    pub dir: PathBuf,
    pub rb: Runbook,
    pub cfg: RunConfig,
    /// `Some` for a resumed run.
    pub prior: Option<PriorState>,
    pub meta: Meta,
    /// Steps already done before a resume (for the operator's information).
    pub done: Vec<String>,
    journal: Journal,
    lock: RunLock,
    clock_from: Option<Timestamp>,
    /// The S3 lock and mirror (`--shared-state`).
    shared: Option<super::shared::Session>,
    /// The incident the run belongs to, for its notifications (`crate::notify`).
    incident_id: Option<String>,
}

/// Keeps the run lock while the run goes on; released when dropped (the journal releases it earlier, when the
/// run's end is recorded).
pub struct SessionGuard {
    pub dir: PathBuf,
    pub run_id: String,
    lock: SharedLock,
    _shared: Option<super::shared::Session>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.lock.release();
    }
}

impl Prepared {
    /// Names the incident the run belongs to (its notifications say so).
    pub fn set_incident_id(&mut self, id: &str) {
        self.incident_id = Some(id.to_string());
    }

    /// Saves the simulator's world at each journal checkpoint (see [`WorldStore`]).
    pub fn set_world_store(&mut self, world: Box<dyn WorldStore>) {
        self.journal.set_world_store(world);
    }

    /// The run clock: a resumed simulation faster than real time continues from where its journal stopped.
    pub fn clock(&self) -> Clock {
        let speed = self.meta.settings.speed;
        let clock = match self.clock_from {
            Some(t) if speed != 1.0 => Clock::starting_at(t, speed),
            _ => Clock::new(speed),
        };
        clock.with_pace(crate::run::clock::emulator_pace(self.meta.settings.endpoint_url.as_deref()))
    }

    /// Where the run's simulated time starts: a resumed simulation faster than real time continues from where its
    /// journal stopped; otherwise now.
    pub fn sim_start(&self) -> Timestamp {
        match self.clock_from {
            Some(t) if self.meta.settings.speed != 1.0 => t,
            _ => Timestamp::now(),
        }
    }

    /// Starts the engine with the journal as its first sink, on the current runtime.
    pub fn start(self, registry: Registry, clock: Clock) -> (RunHandle, SessionGuard) {
        self.start_on(registry, clock, None)
    }

    /// Starts the engine with the journal as its first sink, on the simulator's paced runtime if given (its task
    /// starts at `Paced::go`), else on the current one.
    pub fn start_on(
        self,
        registry: Registry,
        clock: Clock,
        paced: Option<&crate::engine::pace::Paced>,
    ) -> (RunHandle, SessionGuard) {
        let drill = self.rb.meta.drill || self.meta.settings.drill;
        let Prepared { dir, rb, mut cfg, prior, mut journal, lock, shared, incident_id, .. } = self;
        cfg.run_dir = Some(dir.clone());
        if cfg.forecast.is_none()
            && let Some(root) = crate::forecast::store::state_root(&dir)
        {
            // each step's P50 and P90 from the runbook's past runs on this backend
            cfg.forecast = Some(Arc::new(crate::forecast::store::forecast(root, &rb, &registry, &cfg.backend)));
        }
        let run_id = cfg.run_id.clone();
        let emitter = Emitter::new(clock.clone());
        journal.set_redactor(emitter.redactor());
        let lock = SharedLock::new(lock);
        journal.set_lock(lock.clone());
        let abort = journal.abort_handle();
        emitter.add_sink(Box::new(journal));
        // notifications to the bridge, after the journal (which records first); their task runs on the current,
        // real-time runtime, never the simulator's paced one
        let webhooks = crate::notify::webhooks(&rb.meta.notify);
        for u in &webhooks {
            // a webhook URL is a secret: it never appears in an event
            emitter.register_secret(u);
        }
        let cx = crate::notify::Context {
            app: if rb.meta.app.is_empty() { rb.meta.name.clone() } else { rb.meta.app.clone() },
            run_id: run_id.clone(),
            incident_id,
            drill,
            run_dir: dir.clone(),
        };
        if let Some(sink) = crate::notify::start(cx, webhooks) {
            emitter.add_sink(Box::new(sink));
        }
        let rb = Arc::new(rb);
        // the engine reads its clock when it is made: inside the runtime whose time the clock is
        let _context = paced.map(|p| p.handle().enter());
        let engine = match prior {
            Some(p) => Engine::resume(rb, registry, cfg, clock, emitter, p),
            None => Engine::new(rb, registry, cfg, clock, emitter),
        };
        let handle = match paced {
            Some(p) => engine.launch_with(|f| p.spawn(f)),
            None => engine.launch(),
        };
        let _ = abort.set(handle.commands.clone());
        (handle, SessionGuard { dir, run_id, lock, _shared: shared })
    }
}

fn lock_info(meta: &Meta) -> LockInfo {
    LockInfo {
        user: username(),
        host: hostname(),
        pid: std::process::id(),
        since: Timestamp::now(),
        run_id: meta.run_id.clone(),
        runbook: meta.runbook.clone(),
    }
}

fn session_note(number: u32, resumed: bool) -> Note {
    Note::Session { number, resumed, user: username(), host: hostname(), pid: std::process::id(), at: Timestamp::now() }
}

fn taken_note(t: TakenOver) -> Note {
    Note::LockTakenOver {
        by: format!("{}@{}", username(), hostname()),
        previous: t.previous,
        reason: t.reason,
        at: Timestamp::now(),
    }
}

/// The notes a session with shared state journals: where the state lives, and an S3 lock taken over.
fn shared_notes(s: Option<&super::shared::Session>) -> Vec<Note> {
    let Some(s) = s else { return Vec::new() };
    let mut out = vec![s.note()];
    if let Some(t) = s.taken.clone() {
        out.push(taken_note(t));
    }
    out
}

/// Creates the run directory of a new run, stores the runbook and meta.json, takes the run lock and opens the
/// journal. `cfg.run_id` is the run's id (a fresh one is drawn if a directory of that name exists).
pub fn prepare_new(
    state: &StateDir,
    rb: Runbook,
    mut cfg: RunConfig,
    settings: RunSettings,
    take_over_lock: bool,
) -> Result<Prepared, JournalError> {
    let runs = state.runs();
    private_dir(&runs)?;
    private_dir(&state.root)?;
    let key = lock_key(&rb.meta.name, rb.target.account.as_deref(), &rb.target.primary, &rb.target.secondary);
    let mut dir = runs.join(&cfg.run_id);
    for _ in 0..8 {
        if !dir.exists() {
            break;
        }
        cfg.run_id = crate::engine::new_run_id();
        dir = runs.join(&cfg.run_id);
    }
    let runbook_path = std::path::absolute(rb.path()).unwrap_or_else(|_| rb.path().to_path_buf());
    let mut meta = Meta {
        run_id: cfg.run_id.clone(),
        runbook: rb.meta.name.clone(),
        title: rb.meta.title.clone(),
        runbook_path: runbook_path.display().to_string(),
        sha256: rb.sha256(),
        files: Vec::new(),
        user: username(),
        host: hostname(),
        backend: rb.target.backend.as_str().to_string(),
        account: rb.target.account.clone(),
        primary: rb.target.primary.clone(),
        secondary: rb.target.secondary.clone(),
        pid: std::process::id(),
        started: Timestamp::now(),
        lock_key: key.clone(),
        settings,
        sessions: Vec::new(),
        drill_record: rb.meta.drill_record.clone(),
    };
    let (lock, taken) = RunLock::acquire(&state.locks(), &key, lock_info(&meta), take_over_lock, None)?;
    let shared = super::shared::begin_new(&mut meta, take_over_lock)?;
    let mut b = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(&dir).map_err(JournalError::io("cannot create the run directory", &dir))?;
    // a run that could not be opened (a full disk) leaves no directory behind; its lock goes when `lock` drops
    let opened = open_new_run(&dir, &rb, &mut meta, taken, shared.as_ref());
    let journal = match opened {
        Ok(j) => j,
        Err(e) => {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    Ok(Prepared {
        dir,
        rb,
        cfg,
        prior: None,
        meta,
        done: Vec::new(),
        journal,
        lock,
        clock_from: None,
        shared,
        incident_id: None,
    })
}

/// Fills a new run directory: the runbook's text, meta.json, the journal with its first notes.
fn open_new_run(
    dir: &Path,
    rb: &Runbook,
    meta: &mut Meta,
    taken: Option<TakenOver>,
    shared: Option<&super::shared::Session>,
) -> Result<Journal, JournalError> {
    meta.files = store_runbook(dir, rb)?;
    let session = session_note(1, false);
    if let Note::Session { at, .. } = &session {
        meta.sessions.push(SessionInfo {
            number: 1,
            user: meta.user.clone(),
            host: meta.host.clone(),
            pid: meta.pid,
            started: *at,
            resumed: false,
            forced: false,
        });
    }
    meta.write(dir)?;
    let mut journal = Journal::open(dir)?;
    if let Some(s) = shared {
        s.push_new_run(dir, meta)?;
        journal.set_shared(s.mirror(&meta.run_id));
    }
    journal.note(session)?;
    if let Some(t) = taken {
        journal.note(taken_note(t))?;
    }
    for n in shared_notes(shared) {
        journal.note(n)?;
    }
    Ok(journal)
}

/// Copies every file of the runbook into `runbook/` and writes `runbook.sha256`.
fn store_runbook(dir: &Path, rb: &Runbook) -> Result<Vec<String>, JournalError> {
    let rdir = dir.join("runbook");
    private_dir(&rdir)?;
    let mut names = Vec::new();
    let mut sums = String::new();
    for (i, f) in rb.files.iter().enumerate() {
        let base =
            f.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "runbook.toml".into());
        let name = format!("runbook/{i}-{base}");
        write_new(&dir.join(&name), f.text.as_bytes())?;
        let sha = crate::util::sha256_hex([f.text.as_bytes()]);
        sums.push_str(&format!("{sha}  {}\n", f.path.display()));
        names.push(name);
    }
    sums.push_str(&format!("{}  (the runbook: every file above, in order)\n", rb.sha256()));
    write_new(&dir.join("runbook.sha256"), sums.as_bytes())?;
    Ok(names)
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    use std::io::Write;
    let mut f =
        private_file().write(true).create_new(true).open(path).map_err(JournalError::io("cannot create", path))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(JournalError::io("cannot write", path))
}

/// Opens a run to resume it: checks its journal, reloads its runbook from where it was (or from `runbook`, if it
/// moved; refused if its sha256 changed, unless `force`), takes the lock (a lock left by a dead session of this same run is taken over) and rebuilds the
/// engine's prior state.
pub fn prepare_resume(
    state: &StateDir,
    run: &str,
    runbook: Option<&Path>,
    registry: &Registry,
    force: bool,
    take_over_lock: bool,
    recovery_point: Option<String>,
) -> Result<Prepared, JournalError> {
    let (dir, shared) = match super::shared::begin_resume(state, run, take_over_lock)? {
        Some((dir, s)) => (dir, Some(s)),
        None => (state.find_run(run)?, None),
    };
    let mut meta = Meta::read(&dir)?;
    if let Some(s) = &shared {
        meta.settings.shared_state = Some(s.shared.cfg.clone());
    }
    let read = read_journal(&dir)?;
    super::edge::check_resumable(&dir, &meta, &read)?;
    if let Some((outcome, _)) = last_outcome(&read)
        && outcome == Outcome::Recovered
    {
        return Err(JournalError::Usage(format!(
            "run {} already recovered; there is nothing to resume (its report: {})",
            meta.run_id,
            dir.join("report.md").display()
        )));
    }
    let path = runbook.map_or_else(|| PathBuf::from(&meta.runbook_path), Path::to_path_buf);
    let mut rb = match runbook::load(&path, registry) {
        Ok(rb) => rb,
        Err(d) if !path.exists() => {
            return Err(JournalError::NotFound(format!(
                "the runbook of run {} is gone: {} ({d}); if it moved, pass --runbook PATH; the text it ran with is \
                 kept in {}",
                meta.run_id,
                path.display(),
                dir.join("runbook").display()
            )));
        }
        Err(d) => {
            return Err(JournalError::Usage(format!(
                "the runbook of run {} no longer loads:\n{d}the text it ran with is kept in {}",
                meta.run_id,
                dir.join("runbook").display()
            )));
        }
    };
    meta.settings.apply(&mut rb)?;
    let new_sha = rb.sha256();
    let changed = new_sha != meta.sha256;
    if changed && !force {
        return Err(JournalError::Changed(format!(
            "the runbook {} changed since run {} started (sha256 was {}, now {}).\n\
             Resuming with different steps could repeat or skip work. Compare it with the text the run started \
             with, kept in {}; pass --force to resume with the new text (recorded in the journal).",
            path.display(),
            meta.run_id,
            meta.sha256,
            new_sha,
            dir.join("runbook").display()
        )));
    }
    let (lock, taken) =
        RunLock::acquire(&state.locks(), &meta.lock_key, lock_info(&meta), take_over_lock, Some(&meta.run_id))?;
    let (prior, info) = prior_state(&read);
    let mut journal = Journal::open(&dir)?;
    if let Some(s) = &shared {
        journal.set_shared(s.mirror(&meta.run_id));
    }
    let number = u32::try_from(read.notes().filter(|n| matches!(n, Note::Session { .. })).count()).unwrap_or(0) + 1;
    let session = session_note(number, true);
    if let Note::Session { at, .. } = &session {
        meta.sessions.push(SessionInfo {
            number,
            user: username(),
            host: hostname(),
            pid: std::process::id(),
            started: *at,
            resumed: true,
            forced: changed,
        });
    }
    journal.note(session)?;
    if changed {
        journal.note(Note::Forced {
            by: format!("{}@{}", username(), hostname()),
            old_sha256: meta.sha256.clone(),
            new_sha256: new_sha.clone(),
            at: Timestamp::now(),
        })?;
    }
    if let Some(t) = taken {
        journal.note(taken_note(t))?;
    }
    for n in shared_notes(shared.as_ref()) {
        journal.note(n)?;
    }
    meta.write(&dir)?;
    if let Some(s) = &shared {
        s.push_meta(&meta)?;
    }
    let cfg = RunConfig {
        run_id: meta.run_id.clone(),
        incident_start: info.incident_start.or(meta.settings.incident_start).or(Some(meta.started)),
        max_parallel: meta.settings.max_parallel,
        seed: meta.settings.seed,
        recovery_point: recovery_point.or_else(|| meta.settings.recovery_point.clone()),
        backend: rb.target.backend.as_str().to_string(),
        ..RunConfig::default()
    };
    let mut done: Vec<String> = rb
        .steps
        .iter()
        .filter(|s| prior.steps.get(&s.id).is_some_and(|p| p.status == Status::Succeeded))
        .map(|s| s.id.clone())
        .collect();
    done.sort();
    Ok(Prepared {
        dir,
        rb,
        cfg,
        prior: Some(prior),
        meta,
        done,
        journal,
        lock,
        clock_from: info.last_ts,
        shared,
        incident_id: None,
    })
}

/// What else the journal says about a run, beside the engine's prior state.
#[derive(Debug, Clone, Default)]
pub struct JournalInfo {
    pub incident_start: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
}

/// Rebuilds the state a resumed run starts from: succeeded and skipped steps (with outputs), attempts,
/// approvals and answers, event numbering, run time spent — read from the run's [`RunView`], the one fold of its
/// events that the console, the watcher and the reports read too.
///
/// A succeeded step whose outputs were redacted (they held a secret) is run again: the journal never holds the
/// value, and the steps after it may need it. Its action is idempotent.
pub fn prior_state(read: &JournalRead) -> (PriorState, JournalInfo) {
    let view = RunView::from_events(read.events());
    let mut p = PriorState { last_seq: read.last_event_seq(), ..PriorState::default() };
    for s in &view.steps {
        // a succeeded step whose outputs were redacted in the journal (secrets) runs again to get them back
        let redacted = s.outputs.values().any(|v| v.to_string().contains("***"));
        let status = match s.phase {
            Phase::Succeeded if !redacted => Status::Succeeded,
            Phase::Skipped => Status::Skipped,
            Phase::Failed => Status::Failed,
            Phase::Cancelled => Status::Cancelled,
            // it was under way when the session stopped: it starts again
            Phase::Running | Phase::WaitingOperator | Phase::Retrying => Status::Running,
            Phase::Succeeded | Phase::Pending | Phase::AwaitingApproval => Status::Pending,
        };
        let outputs = if status == Status::Succeeded { s.outputs.clone() } else { serde_json::Map::new() };
        let prior = PriorStep { status, attempts: s.attempt, outputs, approved: s.approved_by.is_some() };
        p.steps.insert(s.info.id.clone(), prior);
        // the operator may choose differently when a failed step runs again: an answer before the failure is gone
        if let (Some((answer, by)), Some((seq, manual))) = (&s.answer, s.answer_seq)
            && s.failed_seq.is_none_or(|f| f < seq)
        {
            let reply = if manual { by.clone() } else { answer.clone() };
            p.answers.insert(s.info.id.clone(), PriorAnswer { answer: answer.clone(), by: by.clone(), reply });
        }
    }
    p.elapsed = view.sessions.iter().map(SessionView::spent).sum();
    let info = JournalInfo { incident_start: view.run.as_ref().map(|r| r.incident_start), last_ts: view.last_ts };
    (p, info)
}

/// Every run under the state directory, oldest first.
pub fn list_runs(state: &StateDir) -> Vec<RunSummary> {
    if let Some(r) = super::shared::list_runs(state) {
        return r.unwrap_or_else(|e| {
            eprintln!("drconsole: {e}");
            Vec::new()
        });
    }
    let mut dirs: Vec<PathBuf> = match fs::read_dir(state.runs()) {
        Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect(),
        Err(_) => Vec::new(),
    };
    dirs.sort();
    dirs.into_iter().map(|d| summarize(&d)).collect()
}

impl StateDir {
    /// A run directory from a run id, a unique prefix of one, `last`, or a path to a run directory.
    pub fn find_run(&self, run: &str) -> Result<PathBuf, JournalError> {
        if let Some(dir) = super::shared::pull_for_read(self, run)? {
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

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One truth, by construction: a corpus of journals (recovered, recovered late, RPO missed, RPO unknown, an RPO known
//! only as a bound, drills that pass and fail, a drill recovered late, a run paused and resumed, a run killed and
//! resumed, a region unreachable twice, an incident with one late application), each rendered by every output — the
//! console (TestBackend), `drconsole watch`, the headless printer, `drconsole report` as md, json and junit,
//! `drconsole runs --json`, the incident overview — with the facts read back from each output's text and asserted
//! equal to the run view's: outcome, drill verdict, RTO and RPO verdicts, the RPO achieved (`≥` when bounded),
//! per-step durations and attempts, waits for people, RTO left at a given instant, the regions that were
//! unreachable and those still unreachable.
//!
//! A new output or a new fact must join this test or it fails: the report's JSON keys, the `runs --json` keys and
//! `report --format`'s values are listed here, and each listed one is either compared or named as not a fact.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use jiff::Timestamp;
use serde_json::{Map, Value};

use drconsole::engine::{Candidate, Event, EventKind, EventSink, Outcome, Prompt, StepInfo};
use drconsole::journal::{Journal, Meta, Note, RunSettings, SessionInfo};
use drconsole::run::{RpoVerdict, RunView};
use drconsole::runbook::OnFailure;
use drconsole::tui::Theme;
use drconsole::tui::state::{Input, State};
use drconsole::util::{fmt_clock, fmt_duration};

const T0: i64 = 1_790_000_000;

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(T0 + secs).unwrap()
}

fn d(secs: u64) -> String {
    fmt_duration(Duration::from_secs(secs))
}

fn step(id: &str, action: &str, confirm: bool, needs: &[&str]) -> StepInfo {
    StepInfo {
        id: id.into(),
        title: format!("Step {id}"),
        action: action.into(),
        needs: needs.iter().map(|s| (*s).to_string()).collect(),
        expected_secs: 600,
        confirm,
        on_failure: OnFailure::Pause,
        p50_secs: None,
        p90_secs: None,
    }
}

fn started(s: &str, attempt: u32) -> EventKind {
    EventKind::StepStarted { step: s.into(), attempt, plan: format!("run {s}"), params: Map::new() }
}

fn ok(s: &str, attempt: u32, ms: u64) -> EventKind {
    EventKind::StepSucceeded { step: s.into(), attempt, duration_ms: ms, outputs: Map::new() }
}

fn finished(outcome: Outcome, duration: u64, rto_achieved: u64, rto_met: bool, counts: [u32; 4]) -> EventKind {
    EventKind::RunFinished {
        outcome,
        duration_secs: duration,
        rto_secs: 7200,
        rto_achieved_secs: rto_achieved,
        rto_met,
        succeeded: counts[0],
        failed: counts[1],
        skipped: counts[2],
        cancelled: counts[3],
        message: outcome.as_str().to_string(),
    }
}

fn point(s: &str, rpo_secs: i64, met: bool) -> EventKind {
    EventKind::RecoveryPointChosen {
        step: s.into(),
        id: "rds:app-prod-point".into(),
        kind: "rds-snapshot".into(),
        region: "us-west-2".into(),
        time: ts(-900 - rpo_secs),
        rpo_secs,
        rpo_met: met,
        verdict: None,
        bound: false,
    }
}

fn choice(s: &str) -> EventKind {
    EventKind::OperatorRequest {
        step: s.into(),
        prompt: Prompt::Choice {
            message: "Choose a recovery point".into(),
            candidates: vec![Candidate {
                id: "rds:app-prod-point".into(),
                kind: "rds-snapshot".into(),
                region: "us-west-2".into(),
                time: ts(-2000),
                age_secs: 1100,
                encrypted: true,
                size_gib: Some(100),
                rpo_met: true,
                arn: None,
                source: String::new(),
            }],
        },
    }
}

fn answered(s: &str) -> EventKind {
    EventKind::OperatorAnswered { step: s.into(), answer: "rds:app-prod-point".into(), by: "alice@bastion".into() }
}

enum Rec {
    E(i64, Box<EventKind>),
    /// A new session of the run (a resume after a kill or an interruption).
    Session(u32, i64),
}

/// One journal of the corpus.
struct Case {
    name: &'static str,
    app: &'static str,
    run_id: String,
    drill: bool,
    steps: Vec<StepInfo>,
    records: Vec<Rec>,
}

impl Case {
    fn new(name: &'static str, app: &'static str, n: u32, drill: bool, steps: Vec<StepInfo>) -> Self {
        Self { name, app, run_id: format!("20260922-0215{n:02}-ab{n:02}"), drill, steps, records: Vec::new() }
    }

    fn e(mut self, at: i64, kind: EventKind) -> Self {
        self.records.push(Rec::E(at, Box::new(kind)));
        self
    }

    fn session(mut self, number: u32, at: i64) -> Self {
        self.records.push(Rec::Session(number, at));
        self.e(at, run_started_stub())
    }

    fn run_started(&self) -> EventKind {
        EventKind::RunStarted {
            run_id: self.run_id.clone(),
            runbook: format!("{}-failover", self.app),
            title: format!("{}: fail over", self.app),
            app: self.app.into(),
            path: "runbooks/app.toml".into(),
            sha256: "00".repeat(32),
            backend: "sim".into(),
            account: Some("123456789012".into()),
            primary: "us-east-1".into(),
            secondary: "us-west-2".into(),
            incident_start: ts(-900),
            rto_secs: 7200,
            rpo_secs: 3600,
            deadline: ts(6300),
            speed: 1.0,
            steps: self.steps.clone(),
            drill: self.drill,
        }
    }

    /// The events, numbered, with every `run_started` filled in.
    fn events(&self) -> Vec<Event> {
        let mut out = Vec::new();
        for r in &self.records {
            if let Rec::E(at, kind) = r {
                let kind = match kind.as_ref() {
                    EventKind::RunStarted { .. } => self.run_started(),
                    k => k.clone(),
                };
                out.push(Event::new(out.len() as u64 + 1, ts(*at), kind));
            }
        }
        out
    }

    fn meta(&self) -> Meta {
        Meta {
            run_id: self.run_id.clone(),
            runbook: format!("{}-failover", self.app),
            title: format!("{}: fail over", self.app),
            runbook_path: "/srv/dr/runbooks/app.toml".into(),
            sha256: "00".repeat(32),
            files: vec!["runbook/0-app.toml".into()],
            user: "alice".into(),
            host: "bastion-1".into(),
            backend: "sim".into(),
            account: Some("123456789012".into()),
            primary: "us-east-1".into(),
            secondary: "us-west-2".into(),
            pid: 4242,
            started: ts(0),
            lock_key: format!("{}--123456789012--us-east-1--us-west-2", self.app),
            drill_record: None,
            settings: RunSettings { speed: 1.0, max_parallel: 16, ..RunSettings::default() },
            sessions: vec![SessionInfo {
                number: 1,
                user: "alice".into(),
                host: "bastion-1".into(),
                pid: 4242,
                started: ts(0),
                resumed: false,
                forced: false,
            }],
        }
    }

    /// Writes the run directory under `state/runs/`.
    fn write(&self, state: &Path) {
        let dir = state.join("runs").join(&self.run_id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("meta.json"), serde_json::to_string_pretty(&self.meta()).unwrap()).unwrap();
        let mut j = Journal::open(&dir).unwrap();
        j.set_reports(false);
        let events = self.events();
        let mut next = events.iter();
        for r in &self.records {
            match r {
                Rec::E(..) => j.event(next.next().unwrap()),
                // a dead process's pid: the run is not live (watch and runs see it as crashed or ended)
                Rec::Session(number, at) => j
                    .note(Note::Session {
                        number: *number,
                        resumed: *number > 1,
                        user: "bob".into(),
                        host: "bastion-2".into(),
                        pid: 4_000_000 + number,
                        at: ts(*at),
                    })
                    .unwrap(),
            }
        }
    }

    fn ended(&self) -> bool {
        matches!(self.events().last().map(|e| &e.kind), Some(EventKind::RunFinished { .. }))
    }
}

fn run_started_stub() -> EventKind {
    EventKind::RunStarted {
        run_id: String::new(),
        runbook: String::new(),
        title: String::new(),
        app: String::new(),
        path: String::new(),
        sha256: String::new(),
        backend: String::new(),
        account: None,
        primary: String::new(),
        secondary: String::new(),
        incident_start: ts(0),
        rto_secs: 0,
        rpo_secs: 0,
        deadline: ts(0),
        speed: 1.0,
        steps: Vec::new(),
        drill: false,
    }
}

/// The three-step shape most cases share: a recovery point chosen (a wait for a person), a restore, a cut-over
/// that asks for approval (another wait).
fn steps3() -> Vec<StepInfo> {
    vec![
        step("pick_point", "rds.pick_recovery_point", false, &[]),
        step("restore_db", "rds.restore_snapshot", false, &["pick_point"]),
        step("dns", "route53.failover", true, &["restore_db"]),
    ]
}

/// The first part of a run of `steps3`: the point chosen after a 7-minute wait, the restore started.
fn begin(c: Case, rpo_secs: i64, rpo_met: bool) -> Case {
    c.session(1, 0)
        .e(1, started("pick_point", 1))
        .e(2, choice("pick_point"))
        .e(422, answered("pick_point"))
        .e(423, point("pick_point", rpo_secs, rpo_met))
        .e(424, ok("pick_point", 1, 423_000))
        .e(425, started("restore_db", 1))
}

/// The end of a run of `steps3` from the restore's success at `at`: the cut-over approved after 5 minutes.
fn finish(c: Case, at: i64, rto_met: bool) -> Case {
    let achieved = u64::try_from(at + 900 + 362).unwrap();
    c.e(at, ok("restore_db", 1, 1000))
        .e(at + 1, EventKind::StepAwaitingApproval { step: "dns".into(), plan: "point DNS at us-west-2".into() })
        .e(at + 301, EventKind::StepApproved { step: "dns".into(), by: "alice@bastion".into() })
        .e(at + 302, started("dns", 1))
        .e(at + 362, ok("dns", 1, 60_000))
        .e(at + 362, finished(Outcome::Recovered, u64::try_from(at + 362).unwrap(), achieved, rto_met, [3, 0, 0, 0]))
}

#[allow(clippy::vec_init_then_push)]
fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    // 1. recovered on time, RPO met
    cases.push(finish(begin(Case::new("recovered", "cross-sell", 1, false, steps3()), 1200, true), 2000, true));
    // 2. recovered, RTO missed: recovered-late
    cases.push(finish(begin(Case::new("recovered_late", "inventory", 2, false, steps3()), 1200, true), 7000, false));
    // 3. recovered, RPO missed: recovered-late
    cases.push(finish(begin(Case::new("rpo_missed", "agent-payment", 3, false, steps3()), 4000, false), 2000, true));
    // 4. no recovery point used: RPO unknown
    cases.push(
        Case::new("rpo_unknown", "vendor", 4, false, vec![step("notify", "shell", false, &[])])
            .session(1, 0)
            .e(1, started("notify", 1))
            .e(31, ok("notify", 1, 30_000))
            .e(31, finished(Outcome::Recovered, 31, 931, true, [1, 0, 0, 0])),
    );
    // 5. a drill where nothing failed: pending until its cleanup, everywhere
    let mut drill_steps = steps3();
    drill_steps.push(step("check_http", "check.http", false, &["dns"]));
    let drill_ok =
        finish(begin(Case::new("drill_passed", "cross-sell", 5, true, drill_steps.clone()), 1200, true), 2000, true);
    cases.push(drill_ok);
    // 6. a drill whose check failed (on_failure continue): recovered-late? no: failed, and the drill failed
    cases.push(
        begin(Case::new("drill_failed", "cross-sell", 6, true, drill_steps), 1200, true)
            .e(2000, ok("restore_db", 1, 1000))
            .e(2001, EventKind::StepAwaitingApproval { step: "dns".into(), plan: "point DNS".into() })
            .e(2061, EventKind::StepApproved { step: "dns".into(), by: "alice@bastion".into() })
            .e(2062, started("dns", 1))
            .e(2100, ok("dns", 1, 38_000))
            .e(2101, started("check_http", 1))
            .e(
                2105,
                EventKind::StepFailed {
                    step: "check_http".into(),
                    attempt: 1,
                    error: "GET https://app.example.com/health: 503".into(),
                    policy: OnFailure::Abort,
                    cause: None,
                },
            )
            .e(2105, finished(Outcome::Failed, 2105, 3005, false, [3, 1, 0, 0])),
    );
    // 7. paused and resumed within one session, then recovered
    cases.push(finish(
        begin(Case::new("paused_resumed", "customer", 7, false, steps3()), 1200, true)
            .e(600, EventKind::RunPaused { reason: "paused by alice@bastion".into() })
            .e(900, EventKind::RunResumed { by: "alice@bastion".into() }),
        2000,
        true,
    ));
    // 8. killed during the restore, resumed 10 minutes later; the restore runs again (attempt 2) and succeeds
    cases.push(finish(
        begin(Case::new("killed_resumed", "cross-sell", 8, false, steps3()), 1200, true)
            .e(
                741,
                EventKind::StepProgress {
                    step: "restore_db".into(),
                    message: "creating".into(),
                    percent: None,
                    cause: None,
                },
            )
            .session(2, 1341)
            .e(1342, started("restore_db", 2)),
        1658,
        true,
    ));
    // 9. killed, not resumed yet: the RTO left at an instant after its last event
    cases.push(begin(Case::new("killed", "inventory", 9, false, steps3()), 1200, true).e(
        741,
        EventKind::StepProgress { step: "restore_db".into(), message: "creating".into(), percent: None, cause: None },
    ));
    // 10. an incident of two applications, one late (cases 1 and 2 above are on time and late; these two are one
    // incident's runs)
    cases.push(finish(begin(Case::new("incident_on_time", "alpha", 10, false, steps3()), 1200, true), 2000, true));
    cases.push(finish(begin(Case::new("incident_late", "bravo", 11, false, steps3()), 1200, true), 7000, false));
    // 12. a recovery point whose time is known only as a bound within the RPO: `≥ 20m00s`, RPO unknown
    cases.push(finish(
        Case::new("rpo_bound", "vendor", 12, false, steps3())
            .session(1, 0)
            .e(1, started("pick_point", 1))
            .e(2, choice("pick_point"))
            .e(422, answered("pick_point"))
            .e(423, bounded_point("pick_point", 1200))
            .e(424, ok("pick_point", 1, 423_000))
            .e(425, started("restore_db", 1)),
        2000,
        true,
    ));
    // 13. the primary region unreachable twice: once for 10 minutes, then again until the end
    cases.push(finish(
        begin(Case::new("region_outage", "inventory", 13, false, steps3()), 1200, true)
            .e(500, unreachable("us-east-1", 500))
            .e(
                1100,
                EventKind::RegionReachable {
                    region: "us-east-1".into(),
                    since: ts(1100),
                    evidence: "a probe was answered".into(),
                },
            )
            .e(1500, unreachable("us-east-1", 1500)),
        2000,
        true,
    ));
    // 14. a drill that recovered past its RTO: recovered-late, and the drill failed at its end (before cleanup)
    let mut late_drill = steps3();
    late_drill.push(step("check_http", "check.http", false, &["dns"]));
    cases.push(
        begin(Case::new("drill_late", "customer", 14, true, late_drill), 1200, true)
            .e(7000, ok("restore_db", 1, 1000))
            .e(7001, EventKind::StepAwaitingApproval { step: "dns".into(), plan: "point DNS".into() })
            .e(7061, EventKind::StepApproved { step: "dns".into(), by: "alice@bastion".into() })
            .e(7062, started("dns", 1))
            .e(7100, ok("dns", 1, 38_000))
            .e(7101, started("check_http", 1))
            .e(7105, ok("check_http", 1, 4_000))
            .e(7105, finished(Outcome::Recovered, 7105, 8005, false, [4, 0, 0, 0])),
    );
    cases
}

fn bounded_point(s: &str, rpo_secs: i64) -> EventKind {
    EventKind::RecoveryPointChosen {
        step: s.into(),
        id: "ebs:vol-0a1b2c-copy".into(),
        kind: "ebs-snapshot".into(),
        region: "us-west-2".into(),
        time: ts(-900 - rpo_secs),
        rpo_secs,
        rpo_met: true,
        verdict: Some(RpoVerdict::Unknown),
        bound: true,
    }
}

fn unreachable(region: &str, at: i64) -> EventKind {
    EventKind::RegionUnreachable {
        region: region.into(),
        evidence: "no answer to DescribeDBInstances for 60s".into(),
        since: ts(at),
    }
}

/// The facts every output is compared on. `None`: the output does not carry that fact.
#[derive(Debug, Clone, Default, PartialEq)]
struct Facts {
    outcome: Option<String>,
    drill: Option<String>,
    rto_met: Option<String>,
    rpo: Option<String>,
    /// step id → duration as printed (`fmt_duration`)
    durations: BTreeMap<String, String>,
    /// step id → attempts
    attempts: BTreeMap<String, u32>,
    /// step id → time waiting for a person, as printed
    step_waits: BTreeMap<String, String>,
    /// all steps' waits together, as printed
    waits: Option<String>,
    /// the RTO achieved less the waits (machine time), as printed
    machine: Option<String>,
    /// RTO left at the case's instant, `H:MM:SS`
    rto_left: Option<String>,
    /// the data-loss window of the oldest data restored, `≥ …` when only bounded
    rpo_achieved: Option<String>,
    /// the regions that were unreachable, each period `REGION HH:MM:SS-HH:MM:SS` (`…` still down at the end)
    regions: Option<String>,
    /// the regions still unreachable at the instant (or the end), each `REGION since HH:MM:SS`
    down_now: Option<String>,
}

fn rpo_word(verdict: Option<RpoVerdict>) -> String {
    verdict.map_or("unknown", RpoVerdict::as_str).into()
}

/// A region's down period as the facts write it.
fn period(region: &str, from: Timestamp, to: Option<Timestamp>) -> String {
    let hms = |t: Timestamp| t.strftime("%H:%M:%S").to_string();
    format!("{region} {}-{}", hms(from), to.map_or_else(|| "…".to_string(), hms))
}

/// The RPO verdict in a line of text: `UNKNOWN`, `MISSED`, else met; `none` says no recovery point was used.
fn rpo_in(text: &str, none: &str) -> String {
    if text.contains(none) || text.contains("UNKNOWN") {
        "unknown"
    } else if text.contains("MISSED") {
        "missed"
    } else {
        "met"
    }
    .into()
}

/// The instant "RTO left" is compared at: the last event (unfinished runs; a finished run's clock is frozen).
fn instant(c: &Case) -> Timestamp {
    c.events().last().unwrap().ts
}

/// The truth: the run view's facts.
fn truth(c: &Case) -> Facts {
    let v = RunView::from_events(&c.events());
    let now = instant(c);
    let mut f = Facts {
        outcome: v.outcome_word().map(str::to_string),
        drill: v.drill_verdict(None).map(|x| x.as_str().to_string()),
        rto_met: v.finished.as_ref().map(|f| if f.rto_met { "met" } else { "missed" }.to_string()),
        rpo: Some(rpo_word(v.rpo().verdict)),
        rpo_achieved: v.rpo().achieved_secs.map(|a| drconsole::run::fmt_loss(a, v.rpo().bound)),
        regions: Some(
            v.regions
                .iter()
                .flat_map(|r| r.down.iter().map(|p| period(&r.region, p.since, p.until)))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        waits: Some(d(v.waited_secs(now))),
        machine: v.finished.as_ref().map(|f| d(f.rto_achieved_secs.saturating_sub(v.waited_secs(now)))),
        rto_left: v.clock_at(now).map(|c| fmt_clock(c.rto_left_secs)),
        down_now: Some(
            v.regions
                .iter()
                .filter(|r| r.is_unreachable())
                .filter_map(|r| r.down.last().map(|p| format!("{} since {}", r.region, p.since.strftime("%H:%M:%S"))))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ..Facts::default()
    };
    for s in &v.steps {
        if let Some(secs) = s.duration_secs(now) {
            f.durations.insert(s.info.id.clone(), d(secs));
        }
        f.attempts.insert(s.info.id.clone(), s.attempt);
        f.step_waits.insert(s.info.id.clone(), d(s.wait_secs(now)));
    }
    f
}

/// Disagreements known and left to the output's owner: (case, output, fact, why). Each must still disagree (the
/// test fails once it is fixed, so that the entry goes), and it is not counted as a fact compared.
const KNOWN: &[(&str, &str, &str, &str)] = &[];

/// Asserts an output's facts equal the truth on every fact the output carries (or that a [`KNOWN`] disagreement
/// still disagrees, noting it in `known`); returns how many were compared.
fn compare(case: &str, output: &str, got: &Facts, want: &Facts, known: &mut BTreeSet<usize>) -> usize {
    let mut n = 0;
    let mut one = |what: &str, g: &Option<String>, w: &Option<String>| {
        if let Some(g) = g {
            if let Some(k) = KNOWN.iter().position(|k| (k.0, k.1, k.2) == (case, output, what)) {
                assert_ne!(Some(g), w.as_ref(), "{case}: {output} now agrees on {what}: remove it from KNOWN");
                known.insert(k);
                return;
            }
            assert_eq!(Some(g), w.as_ref(), "{case}: {output} says {what} {g:?}, the view {w:?}");
            n += 1;
        }
    };
    one("outcome", &got.outcome, &want.outcome);
    one("drill verdict", &got.drill, &want.drill);
    one("RTO", &got.rto_met, &want.rto_met);
    one("RPO", &got.rpo, &want.rpo);
    one("waits", &got.waits, &want.waits);
    one("machine time", &got.machine, &want.machine);
    one("RTO left", &got.rto_left, &want.rto_left);
    one("RPO achieved", &got.rpo_achieved, &want.rpo_achieved);
    one("regions", &got.regions, &want.regions);
    one("down now", &got.down_now, &want.down_now);
    for (id, g) in &got.durations {
        assert_eq!(Some(g), want.durations.get(id), "{case}: {output}: duration of {id}");
        n += 1;
    }
    for (id, g) in &got.attempts {
        assert_eq!(Some(g), want.attempts.get(id), "{case}: {output}: attempts of {id}");
        n += 1;
    }
    for (id, g) in &got.step_waits {
        assert_eq!(Some(g), want.step_waits.get(id), "{case}: {output}: waits of {id}");
        n += 1;
    }
    n
}

fn bin(state: &Path) -> Command {
    let mut c = Command::cargo_bin("drconsole").unwrap();
    c.env("DRCONSOLE_STATE_DIR", state).env_remove("DRCONSOLE_SHARED_STATE").env("NO_COLOR", "1");
    c
}

fn stdout(c: &mut Command) -> String {
    let out = c.output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

// ---- the outputs, each read back into facts ---------------------------------------------------------------------

/// The console at 160x48, every step's detail pane visited.
fn console(c: &Case) -> Facts {
    let theme = Theme::preset("dark").unwrap();
    let mut s = State::new(Default::default(), "alice@bastion".into(), false);
    s.handle(Input::Resize(160, 48));
    for ev in c.events() {
        s.handle(Input::Event(Box::new(ev)));
    }
    s.handle(Input::Tick(instant(c)));
    let screen = |s: &State| drconsole::tui::fixtures::text(&drconsole::tui::fixtures::render(s, &theme, 160, 48));
    let text = screen(&s);
    let lines: Vec<&str> = text.lines().collect();
    let mut f = Facts::default();
    // row 2 ends with the run's state: RECOVERED LATE · DRILL FAILED
    let state = lines[1].rsplit("  ").next().unwrap().trim();
    let (word, drill) = match state.split_once(" · DRILL ") {
        Some((w, d)) => (w, Some(d.to_lowercase())),
        None => (state, None),
    };
    if c.ended() {
        f.outcome = Some(word.to_lowercase().replace(' ', "-"));
    }
    // row 2 names the regions unreachable now: `… us-west-2   us-east-1 unreachable since 14:38:20   RECOVERED`
    let down: Vec<String> = lines[1]
        .split("   ")
        .filter_map(|part| part.trim().split_once(" unreachable since "))
        .map(|(region, since)| format!("{} since {since}", region.rsplit(' ').next().unwrap()))
        .collect();
    f.down_now = Some(down.join(", "));
    f.drill = drill;
    // row 3: the RTO verdict at the end, the time left before it
    if c.ended() {
        let l = lines[2];
        f.rto_met = Some(if l.contains(" met achieved") { "met" } else { "missed" }.into());
    } else if let Some(left) = lines[2].split_whitespace().nth(2) {
        f.rto_left = Some(left.to_string());
    }
    // row 4: the RPO verdict, then `: point 20m00s old (…)`
    let l = lines[3];
    f.rpo_achieved = l.split(": point ").nth(1).and_then(|a| a.split(" old").next()).map(str::to_string);
    f.rpo = Some(rpo_in(l, "no recovery point"));
    // the steps pane: `✓ ┌* restore_db Title…   29m59s ×2│`
    let ids: Vec<String> = c.steps.iter().map(|s| s.id.clone()).collect();
    for l in &lines {
        // the steps pane's rows have the detail pane beside them (the log's rows do not)
        let Some(row) = l.strip_prefix('│').filter(|r| r.contains("││")) else { continue };
        let row = row.split('│').next().unwrap_or_default();
        let words: Vec<&str> = row.split_whitespace().collect();
        let Some(id) = words.iter().take(4).find(|w| ids.iter().any(|i| i == *w)) else { continue };
        let mut rest = words.iter().rev();
        let mut last = rest.next().copied().unwrap_or_default();
        let mut attempts = 1;
        if let Some(n) = last.strip_prefix('×') {
            attempts = n.parse().unwrap();
            last = rest.next().copied().unwrap_or_default();
        }
        if last.chars().next().is_some_and(|ch| ch.is_ascii_digit()) && last.ends_with(['s', 'm']) {
            f.durations.insert((*id).to_string(), last.to_string());
            f.attempts.insert((*id).to_string(), attempts);
        }
    }
    // each step's detail: `… · waited 7m00s`
    for i in 0..c.steps.len() {
        s.selected = i;
        let text = screen(&s);
        let id = s.selected_step().unwrap().info.id.clone();
        if std::env::var_os("PARITY_DEBUG").is_some() {
            eprintln!("{id}:\n{text}");
        }
        // the detail's meta line wraps: look for the word and the one after it
        let pane: String = text.lines().filter_map(|l| l.split("││").nth(1)).collect::<Vec<_>>().join(" ");
        let words: Vec<&str> =
            pane.split(|ch: char| ch.is_whitespace() || ch == '│').filter(|w| !w.is_empty()).collect();
        let waited = words.windows(2).find(|w| w[0] == "waited").map(|w| w[1].to_string());
        f.step_waits.insert(id, waited.unwrap_or_else(|| d(0)));
    }
    f
}

/// The headless printer's lines and summary, fed the journal's events (what a headless run prints).
fn printed(c: &Case) -> String {
    let mut out = Vec::new();
    let mut p = drconsole::headless::Printer::new(&mut out, false);
    for ev in c.events() {
        p.print(&ev);
    }
    drop(p);
    String::from_utf8(out).unwrap()
}

/// Facts from printed lines (headless, and `drconsole watch` without a terminal).
fn from_lines(c: &Case, text: &str) -> Facts {
    // the summary names every region that was unreachable, and none when none was
    let mut f =
        Facts { regions: c.ended().then(String::new), down_now: c.ended().then(String::new), ..Facts::default() };
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("outcome:  ") {
            f.outcome = Some(rest.split_whitespace().next().unwrap().to_string());
        } else if let Some(rest) = l.strip_prefix("drill:    ") {
            f.drill = Some(rest.split_whitespace().next().unwrap().to_string());
        } else if let Some(rest) = l.strip_prefix("RTO:      ") {
            f.rto_met = Some(if rest.contains("(met") { "met" } else { "missed" }.into());
            f.waits = Some(rest.split("; ").nth(1).map_or_else(|| d(0), |w| w.split(' ').next().unwrap().to_string()));
        } else if let Some(rest) = l.strip_prefix("RPO:      ") {
            f.rpo = Some(rpo_in(rest, "no recovery point"));
            // `target 1h00m, achieved ≥ 20m00s (UNKNOWN; …`
            f.rpo_achieved = rest.split("achieved ").nth(1).and_then(|a| a.split(" (").next()).map(str::to_string);
        } else if let Some(rest) = l.strip_prefix("region:   ") {
            // `us-east-1 unreachable 02:21:40Z to 02:31:40Z, since 02:38:20Z (still unreachable)`
            let (region, periods) = rest.split_once(" unreachable ").unwrap();
            for p in periods.split(", ").filter(|p| p.ends_with("(still unreachable)")) {
                let since = p.trim_start_matches("since ").split('Z').next().unwrap();
                let mut now: Vec<String> = f.down_now.take().filter(|r| !r.is_empty()).into_iter().collect();
                now.push(format!("{region} since {since}"));
                f.down_now = Some(now.join(", "));
            }
            let mut all: Vec<String> = f.regions.take().filter(|r| !r.is_empty()).into_iter().collect();
            for p in periods.split(", ") {
                let hms = |t: &str| t.trim_end_matches('Z').to_string();
                all.push(match p.strip_prefix("since ") {
                    Some(from) => format!("{region} {}-…", hms(from.split(' ').next().unwrap())),
                    None => {
                        let (from, to) = p.split_once(" to ").unwrap();
                        format!("{region} {}-{}", hms(from), hms(to))
                    }
                });
            }
            f.regions = Some(all.join(", "));
        } else if let Some((prefix, rest)) = l.split_once("] ") {
            // `[+0:07:04 RTO 1:45:56] ok       restore_db       in 29m59s; …`
            let words: Vec<&str> = rest.split_whitespace().collect();
            if words.first() == Some(&"ok") && words.get(2) == Some(&"in") {
                f.durations.insert(words[1].to_string(), words[3].trim_end_matches(';').to_string());
            }
            if !c.ended() {
                f.rto_left = prefix.rsplit(' ').next().map(str::to_string);
            }
        }
    }
    f
}

fn report_json(state: &Path, c: &Case) -> (Facts, Value) {
    let text = stdout(bin(state).args(["report", &c.run_id, "--format", "json"]));
    let r: Value = serde_json::from_str(&text).unwrap();
    let mut f = Facts {
        outcome: r["verdict"].as_str().map(str::to_string),
        drill: r["recovery_test"]["verdict"].as_str().map(str::to_string),
        rto_met: r["rto"]["met"].as_bool().map(|m| if m { "met" } else { "missed" }.to_string()),
        rpo: Some(r["rpo"]["verdict"].as_str().unwrap_or("unknown").to_string()),
        rpo_achieved: r["rpo"]["achieved_secs"]
            .as_i64()
            .map(|a| drconsole::run::fmt_loss(a, r["rpo"]["bound"].as_bool().unwrap_or(false))),
        regions: Some(
            r["regions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|d| {
                            let t = |v: &Value| v.as_str().map(|s| s.parse::<Timestamp>().unwrap());
                            period(d["region"].as_str().unwrap(), t(&d["since"]).unwrap(), t(&d["until"]))
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
        ),
        waits: r["rto"]["waited_secs"].as_u64().map(d),
        machine: r["rto"]["machine_secs"].as_u64().map(d),
        ..Facts::default()
    };
    for s in r["steps"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap().to_string();
        // the report gives durations of steps that ended
        if let Some(secs) = s["duration_secs"].as_u64() {
            f.durations.insert(id.clone(), d(secs));
        }
        f.attempts.insert(id.clone(), u32::try_from(s["attempts"].as_u64().unwrap()).unwrap());
        f.step_waits.insert(id, d(s["wait_secs"].as_u64().unwrap()));
    }
    (f, r)
}

fn report_md(state: &Path, c: &Case) -> Facts {
    let text = stdout(bin(state).args(["report", &c.run_id, "--format", "md"]));
    // the Region health section lists every region that was unreachable (absent: none was)
    let mut f = Facts { regions: Some(String::new()), ..Facts::default() };
    let mut in_regions = false;
    for l in text.lines() {
        if l.starts_with("## ") {
            in_regions = l == "## Region health";
        }
        let cells: Vec<&str> = l.split(" | ").map(|x| x.trim_matches(|ch| ch == '|' || ch == ' ')).collect();
        match cells.first().copied() {
            Some("Outcome") if !l.contains("not finished") => {
                f.outcome = Some(cells[1].split("**").nth(1).unwrap().to_string());
            }
            Some("Verdict") => f.drill = Some(cells[1].trim_matches('*').to_lowercase()),
            Some("RTO") if c.ended() => {
                f.rto_met = Some(if cells[1].contains("**met**") { "met" } else { "missed" }.into());
            }
            _ => {}
        }
        match cells.first().copied() {
            // the run's RTO row (the drill section's says `measured …`)
            Some("RTO") if c.ended() && cells[1].starts_with("target") => {
                f.machine = cells[1]
                    .split(", ")
                    .find(|w| w.ends_with("machine time)") || w.contains("machine time) "))
                    .map(|w| w.split(' ').next().unwrap().to_string());
                f.waits = Some(
                    cells[1]
                        .split(" (")
                        .nth(1)
                        .filter(|w| w.contains(" waiting for people"))
                        .map_or_else(|| d(0), |w| w.split(' ').next().unwrap().to_string()),
                );
            }
            Some("RPO") => {
                f.rpo = Some(rpo_in(cells[1], "no recovery point"));
                // `target 1h00m, achieved ≥ 20m00s — **UNKNOWN** …`
                f.rpo_achieved =
                    cells[1].split("achieved ").nth(1).and_then(|a| a.split(" — ").next()).map(str::to_string);
            }
            // `| us-east-1 | 2026-09-22 02:21:40Z | … | evidence |` in the Region health section
            Some(region) if in_regions && cells.len() == 4 && region != "region" && !region.starts_with("---") => {
                let hms = |t: &str| t.trim_end_matches('Z').rsplit([' ', 'T']).next().unwrap().to_string();
                let to = if cells[2].starts_with("still unreachable") { "…".to_string() } else { hms(cells[2]) };
                let mut all: Vec<String> = f.regions.take().filter(|r| !r.is_empty()).into_iter().collect();
                all.push(format!("{region} {}-{to}", hms(cells[1])));
                f.regions = Some(all.join(", "));
            }
            Some(first) if first.starts_with('`') && cells.len() >= 9 => {
                // | `id` title | action | start | end | duration | waited | attempts | outcome | resources |
                let id = first.split('`').nth(1).unwrap().to_string();
                if cells[4] != "—" {
                    f.durations.insert(id.clone(), cells[4].to_string());
                }
                f.step_waits.insert(id.clone(), if cells[5] == "—" { d(0) } else { cells[5].to_string() });
                f.attempts.insert(id, cells[6].parse().unwrap());
            }
            _ => {}
        }
    }
    f
}

fn report_junit(state: &Path, c: &Case) -> Facts {
    let text = stdout(bin(state).args(["report", &c.run_id, "--format", "junit"]));
    let mut f = Facts::default();
    let v = RunView::from_events(&c.events());
    for l in text.lines() {
        let Some(rest) = l.trim().strip_prefix("<testcase name=\"") else { continue };
        let id = rest.split('"').next().unwrap().to_string();
        let time = rest.split("time=\"").nth(1).unwrap().split('"').next().unwrap();
        // junit gives 0 for a step that never ended
        if v.step(&id).is_some_and(|s| s.ended.is_some()) {
            f.durations.insert(id, d(time.parse().unwrap()));
        }
    }
    f
}

fn runs_json(state: &Path) -> BTreeMap<String, Value> {
    let text = stdout(bin(state).args(["runs", "--json"]));
    let v: Value = serde_json::from_str(&text).unwrap();
    v.as_array().unwrap().iter().map(|r| (r["run_id"].as_str().unwrap().to_string(), r.clone())).collect()
}

fn from_runs(r: &Value) -> Facts {
    let word = r["verdict"].as_str().unwrap_or_default();
    Facts {
        outcome: (!word.is_empty()).then(|| word.to_string()),
        drill: r["drill"].as_str().map(str::to_string),
        ..Facts::default()
    }
}

/// The incident overview's row of an application.
fn overview(c: &Case) -> Facts {
    let v = RunView::from_events(&c.events());
    let row = drconsole::incident::overview::OverviewRow::from_view(c.app, &v, instant(c));
    Facts {
        outcome: c.ended().then(|| row.state.clone()),
        rto_left: (!c.ended()).then(|| row.rto_left()),
        // the board's RPO word
        rpo: Some(rpo_word(row.rpo_verdict)),
        ..Facts::default()
    }
}

#[test]
fn every_output_says_what_the_run_view_says() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path();
    let cases = corpus();
    for c in &cases {
        c.write(state);
    }
    // the outputs this test knows: a new `report --format` must join it
    let help = stdout(bin(state).args(["report", "--help"]));
    let formats: BTreeSet<&str> =
        help.split("[possible values: ").nth(1).unwrap().split(']').next().unwrap().split(", ").collect();
    assert_eq!(formats, BTreeSet::from(["md", "json", "junit"]), "a new report format joins this test");
    let runs = runs_json(state);
    let mut compared = 0;
    let mut seen_known = BTreeSet::new();
    let mut per_output: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &cases {
        let want = truth(c);
        let (json_facts, report) = report_json(state, c);
        let mut outputs: Vec<(&str, Facts)> = vec![
            ("console", console(c)),
            ("headless", from_lines(c, &printed(c))),
            ("report json", json_facts),
            ("report md", report_md(state, c)),
            ("report junit", report_junit(state, c)),
            ("runs --json", from_runs(&runs[&c.run_id])),
            ("incident overview", overview(c)),
        ];
        if c.ended() {
            // watch follows an unfinished run until it ends: only finished ones here
            let text = stdout(bin(state).args(["watch", &c.run_id]).timeout(Duration::from_secs(60)));
            outputs.push(("watch", from_lines(c, &text)));
        }
        for (name, got) in &outputs {
            let n = compare(c.name, name, got, &want, &mut seen_known);
            *per_output.entry(name).or_default() += n;
            compared += n;
        }
        // the report's keys: each is a fact compared above or named here as not one
        let keys: BTreeSet<&str> = report.as_object().unwrap().keys().map(String::as_str).collect();
        let known = BTreeSet::from([
            "format",
            "run_id",
            "runbook",
            "operator",
            "backend",
            "account",
            "identity",
            "primary",
            "secondary",
            "incident_start",
            "started",
            "ended",
            "simulated",
            "outcome",
            "verdict",
            "message",
            "rto",
            "rpo",
            "steps",
            "decisions",
            "verification",
            "errors",
            "warnings",
            "sessions",
            "journal",
            "recovery_test",
            "regions",
        ]);
        let unknown: Vec<&&str> = keys.difference(&known).collect();
        assert!(unknown.is_empty(), "report.json has new keys {unknown:?}: compare them here or name them");
    }
    let keys: BTreeSet<String> = runs.values().flat_map(|r| r.as_object().unwrap().keys().cloned()).collect();
    let known: BTreeSet<String> =
        ["run_id", "runbook", "status", "started", "outcome", "verdict", "drill", "sessions", "dir", "problem"]
            .into_iter()
            .map(str::to_string)
            .collect();
    assert!(keys.is_subset(&known), "runs --json has new keys {:?}", keys.difference(&known).collect::<Vec<_>>());
    eprintln!("parity: {} journals, {compared} facts compared: {per_output:?}", cases.len());
    for (i, k) in KNOWN.iter().enumerate() {
        assert!(seen_known.contains(&i), "KNOWN {k:?} was never compared: remove it");
        eprintln!("parity: known disagreement, {}: {} on {}: {}", k.0, k.1, k.2, k.3);
    }
    assert_eq!(cases.len(), 14);
    for (name, n) in &per_output {
        assert!(*n > 0, "{name} compared nothing");
    }
}

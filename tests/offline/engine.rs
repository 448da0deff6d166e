//! The engine, library-level, on tokio's paused clock: timings are read from event timestamps (`Event.ts`), which
//! are deterministic because the clock starts at a fixed time and tokio advances it only when every task waits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use drconsole::actions::spec::out;
use drconsole::actions::{
    Action, ActionCtx, ActionError, ActionSpec, Effect, Outputs, ParamKind as K, ParamSpec as P, Params, Registry,
};
use drconsole::engine::{Clock, Command, Engine, Event, EventKind, Outcome, Prompt, RunConfig, RunResult, Status};
use drconsole::runbook::{self, OnFailure};

// ---------------------------------------------------------------------------------------------------------------
// test-only actions

/// Fails (transiently, or fatally with `fatal = true`) while the attempt number is at most `fail_times`; each attempt
/// takes `work` of run time. Outputs the attempt that succeeded.
struct Flaky;
static FLAKY: ActionSpec = ActionSpec {
    name: "test.flaky",
    summary: "fails the first N attempts",
    params: &[
        P::req("fail_times", K::Int, "attempts that fail"),
        P::opt("work", K::Duration, "how long each attempt takes"),
        P::opt("fatal", K::Bool, "fail without allowing a retry"),
    ],
    outputs: &[out("attempt", "the attempt that succeeded")],
    iam: &[],
    expected_secs: 10,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for Flaky {
    fn spec(&self) -> &'static ActionSpec {
        &FLAKY
    }
    fn plan(&self, p: &Params) -> String {
        format!("fail {} times", p.int("fail_times").unwrap_or(0))
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        if let Some(work) = p.opt_duration("work")? {
            ctx.sleep(work).await?;
        }
        if i64::from(ctx.attempt) <= p.int("fail_times")? {
            let msg = format!("attempt {} failed on purpose", ctx.attempt);
            return Err(if p.bool_or("fatal", false)? { ActionError::fatal(msg) } else { ActionError::transient(msg) });
        }
        let mut o = Outputs::new();
        o.insert("attempt".into(), json!(ctx.attempt));
        Ok(o)
    }
}

/// Succeeds at once and outputs its `value` parameter, as it received it (after interpolation).
struct Echo;
static ECHO: ActionSpec = ActionSpec {
    name: "test.echo",
    summary: "outputs its parameter",
    params: &[P::req("value", K::Str, "the value to output")],
    outputs: &[out("value", "the parameter, interpolated")],
    iam: &[],
    expected_secs: 1,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for Echo {
    fn spec(&self) -> &'static ActionSpec {
        &ECHO
    }
    fn plan(&self, p: &Params) -> String {
        format!("echo {}", p.text("value").unwrap_or_default())
    }
    async fn run(&self, _ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let mut o = Outputs::new();
        o.insert("value".into(), p.get("value").cloned().unwrap_or(Value::Null));
        Ok(o)
    }
}

/// Sleeps `work` without watching for cancellation, like an action stuck in a call that cannot be interrupted.
struct Stubborn;
static STUBBORN: ActionSpec = ActionSpec {
    name: "test.stubborn",
    summary: "ignores cancellation",
    params: &[P::req("work", K::Duration, "how long it takes")],
    outputs: &[],
    iam: &[],
    expected_secs: 10,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for Stubborn {
    fn spec(&self) -> &'static ActionSpec {
        &STUBBORN
    }
    fn plan(&self, _: &Params) -> String {
        "ignore cancellation".into()
    }
    async fn run(&self, _ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        tokio::time::sleep(p.duration("work")?).await;
        Ok(Outputs::new())
    }
}

/// Stands in for a size-dependent action (it takes the name `rds.copy_snapshot`, which the forecast scales by size):
/// takes `work` of run time and outputs its `id` and `size_gib` (when given).
struct Sized;
static SIZED: ActionSpec = ActionSpec {
    name: "rds.copy_snapshot",
    summary: "a size-dependent step",
    params: &[
        P::req("snapshot", K::Str, "what it works on"),
        P::opt("work", K::Duration, "how long it takes"),
        P::opt("size_gib", K::Int, "the size it reports"),
    ],
    outputs: &[out("id", "its id"), out("size_gib", "its size")],
    iam: &[],
    expected_secs: 10,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for Sized {
    fn spec(&self) -> &'static ActionSpec {
        &SIZED
    }
    fn plan(&self, p: &Params) -> String {
        format!("copy {}", p.text("snapshot").unwrap_or_default())
    }
    async fn run(&self, _ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        if let Some(w) = p.opt_duration("work")? {
            tokio::time::sleep(w).await;
        }
        let mut o = Outputs::new();
        o.insert("id".into(), Value::from(format!("copy-of-{}", p.text("snapshot")?)));
        if let Some(g) = p.opt_int("size_gib")? {
            o.insert("size_gib".into(), Value::from(g));
        }
        Ok(o)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// helpers

fn t0() -> jiff::Timestamp {
    "2026-11-21T03:00:00Z".parse().unwrap()
}

fn registry() -> Registry {
    Registry::builtin_with(vec![Arc::new(Flaky), Arc::new(Echo), Arc::new(Stubborn), Arc::new(Sized)])
}

/// A runbook with the standard header and the given steps.
fn runbook(steps: &str) -> runbook::Runbook {
    let text = format!(
        "[runbook]\nname = \"engine-test\"\ntitle = \"Engine test\"\napp = \"test\"\nrto = \"1h\"\nrpo = \"1h\"\n\n\
         [target]\nbackend = \"sim\"\nprimary = \"us-east-1\"\nsecondary = \"us-west-2\"\n\n\
         [vars]\nname = \"orders\"\n{steps}"
    );
    runbook::load_str(Path::new("engine-test.toml"), &text, &registry()).unwrap_or_else(|d| panic!("{d}\n{text}"))
}

fn config() -> RunConfig {
    RunConfig { run_id: "run-1".into(), seed: 7, ..RunConfig::default() }
}

struct Run {
    events: Vec<Event>,
    result: RunResult,
}

impl Run {
    /// Seconds from the clock's start to an event.
    fn secs(ev: &Event) -> f64 {
        ev.ts.duration_since(t0()).as_secs_f64()
    }

    fn find(&self, what: &str, f: impl Fn(&EventKind) -> bool) -> &Event {
        self.events.iter().find(|e| f(&e.kind)).unwrap_or_else(|| panic!("no {what} event in\n{}", self.dump()))
    }

    fn all(&self, f: impl Fn(&EventKind) -> bool) -> Vec<&Event> {
        self.events.iter().filter(|e| f(&e.kind)).collect()
    }

    fn started(&self, step: &str) -> &Event {
        self.find(&format!("StepStarted {step}"), |k| matches!(k, EventKind::StepStarted { step: s, .. } if s == step))
    }

    fn succeeded(&self, step: &str) -> &Event {
        self.find(
            &format!("StepSucceeded {step}"),
            |k| matches!(k, EventKind::StepSucceeded { step: s, .. } if s == step),
        )
    }

    fn finished(&self) -> &Event {
        self.find("RunFinished", |k| matches!(k, EventKind::RunFinished { .. }))
    }

    fn status(&self, step: &str) -> Status {
        self.result.statuses.iter().find(|(s, _)| s == step).map(|(_, st)| *st).unwrap()
    }

    fn dump(&self) -> String {
        self.events.iter().map(|e| format!("  {:7.3}s {:?}\n", Self::secs(e), e.kind)).collect()
    }
}

/// Runs a runbook to its end; `respond` sees every event (with the time since start) and may answer with commands.
async fn run_with(rb: runbook::Runbook, cfg: RunConfig, mut respond: impl FnMut(&Event) -> Vec<Command>) -> Run {
    let handle = Engine::spawn(Arc::new(rb), registry(), cfg, Clock::starting_at(t0(), 1.0));
    let mut events = handle.events;
    let mut seen = Vec::new();
    while let Some(ev) = events.recv().await {
        for cmd in respond(&ev) {
            handle.commands.send(cmd).unwrap();
        }
        let last = matches!(ev.kind, EventKind::RunFinished { .. });
        seen.push(ev);
        if last {
            break;
        }
    }
    let result = handle.join.await.unwrap();
    let run = Run { events: seen, result };
    // invariants of every run: events numbered 1, 2, 3..., time never goes back, one RunFinished at the end
    for (n, ev) in run.events.iter().enumerate() {
        assert_eq!(ev.seq, n as u64 + 1, "events out of sequence\n{}", run.dump());
    }
    assert!(run.events.windows(2).all(|w| w[0].ts <= w[1].ts), "time went back\n{}", run.dump());
    assert!(matches!(run.events.first().map(|e| &e.kind), Some(EventKind::RunStarted { .. })));
    run
}

async fn run(rb: runbook::Runbook) -> Run {
    run_with(rb, config(), |_| Vec::new()).await
}

/// Equal within the 1 ms resolution of tokio's timers (a deadline may round up to the next millisecond).
fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.01
}

fn by() -> String {
    "tester".into()
}

// ---------------------------------------------------------------------------------------------------------------
// scheduling

const PARALLEL: &str = r#"
[[step]]
id = "a"
title = "A"
action = "wait"
with = { duration = "2s" }

[[step]]
id = "b"
title = "B"
action = "wait"
with = { duration = "2s" }

[[step]]
id = "c"
title = "C"
action = "wait"
needs = ["a", "b"]
with = { duration = "2s" }
"#;

#[tokio::test(start_paused = true)]
async fn independent_steps_run_in_parallel() {
    let r = run(runbook(PARALLEL)).await;
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    // a and b start together at 0 and end at 2; c starts at 2 and ends at 4: 4 s, not the 6 s of a sequence
    assert_eq!(Run::secs(r.started("a")), 0.0);
    assert_eq!(Run::secs(r.started("b")), 0.0);
    for s in ["a", "b"] {
        let t = Run::secs(r.succeeded(s));
        assert!((2.0..2.01).contains(&t), "{s} finished at {t}\n{}", r.dump());
    }
    let c_start = Run::secs(r.started("c"));
    let end = Run::secs(r.succeeded("c"));
    assert!((2.0..2.01).contains(&c_start), "c started at {c_start}\n{}", r.dump());
    assert!((4.0..4.02).contains(&end), "c finished at {end}\n{}", r.dump());
    let EventKind::RunFinished { duration_secs, succeeded, rto_met, .. } = &r.finished().kind else { unreachable!() };
    assert_eq!((*duration_secs, *succeeded, *rto_met), (4, 3, true));
}

#[tokio::test(start_paused = true)]
async fn max_parallel_bounds_running_steps() {
    let steps: String = (0..6)
        .map(|i| {
            format!("\n[[step]]\nid = \"s{i}\"\ntitle = \"S{i}\"\naction = \"wait\"\nwith = {{ duration = \"1s\" }}\n")
        })
        .collect();
    let cfg = RunConfig { max_parallel: 2, ..config() };
    let r = run_with(runbook(&steps), cfg, |_| Vec::new()).await;
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    let mut running = 0i32;
    let mut most = 0;
    for ev in &r.events {
        match ev.kind {
            EventKind::StepStarted { .. } => running += 1,
            EventKind::StepSucceeded { .. } => running -= 1,
            _ => {}
        }
        most = most.max(running);
    }
    assert_eq!(most, 2, "{}", r.dump());
    // six 1 s steps, two at a time: three rounds
    let end = Run::secs(r.finished());
    assert!((3.0..3.05).contains(&end), "finished at {end}\n{}", r.dump());
}

#[tokio::test(start_paused = true)]
async fn outputs_are_interpolated_when_the_step_starts() {
    let rb = runbook(
        r#"
[[step]]
id = "flaky"
title = "Succeeds at the second attempt"
action = "test.flaky"
retries = 1
with = { fail_times = 1 }

[[step]]
id = "use"
title = "Uses the output"
action = "test.echo"
needs = ["flaky"]
with = { value = "${vars.name}: attempt ${steps.flaky.attempt} of run ${run.id} in ${target.secondary}" }

[[step]]
id = "typed"
title = "A whole reference keeps its type"
action = "test.echo"
needs = ["flaky"]
with = { value = "${steps.flaky.attempt}" }
"#,
    );
    let r = run(rb).await;
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    let want = "orders: attempt 2 of run run-1 in us-west-2";
    let EventKind::StepStarted { params, .. } = &r.started("use").kind else { unreachable!() };
    assert_eq!(params["value"], want);
    let EventKind::StepSucceeded { outputs, .. } = &r.succeeded("use").kind else { unreachable!() };
    assert_eq!(outputs["value"], want);
    let EventKind::StepSucceeded { outputs, .. } = &r.succeeded("typed").kind else { unreachable!() };
    assert_eq!(outputs["value"], json!(2));
}

// ---------------------------------------------------------------------------------------------------------------
// retries and timeouts

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_then_succeed() {
    let rb = runbook(
        r#"
[[step]]
id = "flaky"
title = "Fails twice"
action = "test.flaky"
retries = 3
with = { fail_times = 2 }
"#,
    );
    let r = run(rb).await;
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    let retries: Vec<(u32, u64, f64)> = r
        .all(|k| matches!(k, EventKind::StepRetrying { .. }))
        .into_iter()
        .map(|e| match &e.kind {
            EventKind::StepRetrying { attempt, delay_ms, .. } => (*attempt, *delay_ms, Run::secs(e)),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(retries.len(), 2, "{}", r.dump());
    // base 2 s doubling, with jitter in [half, full]
    let (a1, d1, t1) = retries[0];
    let (a2, d2, t2) = retries[1];
    assert_eq!((a1, a2), (1, 2));
    assert!((1000..=2000).contains(&d1), "first delay {d1} ms");
    assert!((2000..=4000).contains(&d2), "second delay {d2} ms");
    // each next attempt starts after its delay, as the timestamps show
    let starts: Vec<f64> = r.all(|k| matches!(k, EventKind::StepStarted { .. })).into_iter().map(Run::secs).collect();
    assert_eq!(starts.len(), 3);
    assert!((starts[1] - t1 - d1 as f64 / 1000.0).abs() < 0.01, "{}", r.dump());
    assert!((starts[2] - t2 - d2 as f64 / 1000.0).abs() < 0.01, "{}", r.dump());
    let EventKind::StepSucceeded { attempt, outputs, .. } = &r.succeeded("flaky").kind else { unreachable!() };
    assert_eq!(*attempt, 3);
    assert_eq!(outputs["attempt"], 3);
}

#[tokio::test(start_paused = true)]
async fn retries_exhausted_fail_the_step() {
    let rb = runbook(
        r#"
[[step]]
id = "flaky"
title = "Always fails"
action = "test.flaky"
retries = 2
on_failure = "abort"
with = { fail_times = 100 }
"#,
    );
    let r = run(rb).await;
    assert_eq!(r.result.outcome, Outcome::Failed, "{}", r.dump());
    assert_eq!(r.all(|k| matches!(k, EventKind::StepRetrying { .. })).len(), 2);
    let failed = r.find("StepFailed", |k| matches!(k, EventKind::StepFailed { .. }));
    let EventKind::StepFailed { attempt, error, policy, .. } = &failed.kind else { unreachable!() };
    assert_eq!((*attempt, *policy), (3, OnFailure::Abort));
    assert!(error.contains("attempt 3 failed on purpose"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn fatal_errors_are_not_retried() {
    let rb = runbook(
        r#"
[[step]]
id = "flaky"
title = "Fails fatally"
action = "test.flaky"
retries = 5
on_failure = "abort"
with = { fail_times = 1, fatal = true }
"#,
    );
    let r = run(rb).await;
    assert_eq!(r.result.outcome, Outcome::Failed);
    assert!(r.all(|k| matches!(k, EventKind::StepRetrying { .. })).is_empty(), "{}", r.dump());
    assert_eq!(Run::secs(r.finished()), 0.0);
}

#[tokio::test(start_paused = true)]
async fn timeout_applies_to_each_attempt() {
    let rb = runbook(
        r#"
[[step]]
id = "slow"
title = "Takes 10 s, allowed 3 s"
action = "test.flaky"
timeout = "3s"
retries = 1
on_failure = "abort"
with = { fail_times = 0, work = "10s" }
"#,
    );
    let r = run(rb).await;
    assert_eq!(r.result.outcome, Outcome::Failed, "{}", r.dump());
    let retry = r.find("StepRetrying", |k| matches!(k, EventKind::StepRetrying { .. }));
    let EventKind::StepRetrying { error, delay_ms, .. } = &retry.kind else { unreachable!() };
    assert!(error.contains("timed out after 3s"), "{error}");
    assert!((3.0..3.01).contains(&Run::secs(retry)), "{}", r.dump());
    let failed = r.find("StepFailed", |k| matches!(k, EventKind::StepFailed { .. }));
    let EventKind::StepFailed { error, attempt, .. } = &failed.kind else { unreachable!() };
    assert_eq!(*attempt, 2);
    assert!(error.contains("timed out after 3s"), "{error}");
    // the second attempt also gets its own 3 s, after the backoff
    let expect = 3.0 + *delay_ms as f64 / 1000.0 + 3.0;
    assert!(
        (Run::secs(failed) - expect).abs() < 0.02,
        "failed at {} expected {expect}\n{}",
        Run::secs(failed),
        r.dump()
    );
}

// ---------------------------------------------------------------------------------------------------------------
// on_failure

fn failing_with(policy: &str) -> runbook::Runbook {
    runbook(&format!(
        r#"
[[step]]
id = "bad"
title = "Fails once"
action = "test.flaky"
on_failure = "{policy}"
with = {{ fail_times = 1, work = "1s" }}

[[step]]
id = "slow"
title = "Independent, still running when bad fails"
action = "wait"
with = {{ duration = "10s" }}

[[step]]
id = "after"
title = "Needs bad"
action = "wait"
needs = ["bad"]
with = {{ duration = "1s" }}
"#
    ))
}

#[tokio::test(start_paused = true)]
async fn on_failure_abort_fails_the_run_and_cancels_the_rest() {
    let r = run(failing_with("abort")).await;
    assert_eq!(r.result.outcome, Outcome::Failed, "{}", r.dump());
    assert!(r.result.message.contains("step `bad` failed"), "{}", r.result.message);
    assert_eq!(r.status("bad"), Status::Failed);
    assert_eq!(r.status("slow"), Status::Cancelled);
    assert_eq!(r.status("after"), Status::Cancelled);
    let cancelled: Vec<&str> =
        r.all(|k| matches!(k, EventKind::StepCancelled { .. })).into_iter().filter_map(|e| e.kind.step()).collect();
    assert_eq!(cancelled, ["slow", "after"], "{}", r.dump());
    assert!(r.all(|k| matches!(k, EventKind::StepStarted { step, .. } if step == "after")).is_empty());
    // the run stops when bad fails, it does not wait for slow's 10 s
    assert!(Run::secs(r.finished()) < 1.1, "{}", r.dump());
    assert_eq!(r.result.outcome.exit_code(), 1);
}

#[tokio::test(start_paused = true)]
async fn on_failure_continue_lets_the_run_recover() {
    let r = run(failing_with("continue")).await;
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    assert_eq!(r.status("bad"), Status::Failed);
    assert_eq!(r.status("after"), Status::Succeeded);
    assert_eq!(r.status("slow"), Status::Succeeded);
    let EventKind::RunFinished { failed, succeeded, .. } = &r.finished().kind else { unreachable!() };
    assert_eq!((*failed, *succeeded), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn on_failure_pause_then_retry_succeeds() {
    let r = run_with(failing_with("pause"), config(), |ev| match &ev.kind {
        EventKind::RunPaused { .. } => vec![Command::Retry { step: "bad".into(), by: by() }],
        _ => Vec::new(),
    })
    .await;
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    let paused = r.find("RunPaused", |k| matches!(k, EventKind::RunPaused { .. }));
    let EventKind::RunPaused { reason } = &paused.kind else { unreachable!() };
    assert!(reason.contains("step `bad` failed"), "{reason}");
    r.find("RunResumed", |k| matches!(k, EventKind::RunResumed { by } if by == "tester"));
    let EventKind::StepSucceeded { attempt, .. } = &r.succeeded("bad").kind else { unreachable!() };
    assert_eq!(*attempt, 2, "the retry is the second attempt");
    assert_eq!(r.status("after"), Status::Succeeded);
    // `after` starts only once `bad` succeeded at the retry (1 s + 1 s)
    assert!(Run::secs(r.started("after")) >= 2.0, "{}", r.dump());
}

#[tokio::test(start_paused = true)]
async fn on_failure_pause_then_skip_resumes() {
    let r = run_with(failing_with("pause"), config(), |ev| match &ev.kind {
        EventKind::RunPaused { .. } => {
            vec![Command::Skip { step: "bad".into(), reason: "done by hand in the console".into(), by: by() }]
        }
        _ => Vec::new(),
    })
    .await;
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    let skipped = r.find("StepSkipped", |k| matches!(k, EventKind::StepSkipped { .. }));
    assert_eq!(
        skipped.kind,
        EventKind::StepSkipped { step: "bad".into(), reason: "done by hand in the console".into(), by: by() }
    );
    r.find("RunResumed", |k| matches!(k, EventKind::RunResumed { .. }));
    assert_eq!(r.status("bad"), Status::Skipped);
    assert_eq!(r.status("after"), Status::Succeeded);
    let EventKind::RunFinished { skipped, failed, .. } = &r.finished().kind else { unreachable!() };
    assert_eq!((*skipped, *failed), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn paused_run_starts_nothing_new_until_resumed() {
    let rb = runbook(
        r#"
[[step]]
id = "first"
title = "First"
action = "wait"
with = { duration = "1s" }

[[step]]
id = "second"
title = "Second"
action = "wait"
needs = ["first"]
with = { duration = "1s" }
"#,
    );
    let mut resumed = false;
    let r = run_with(rb, config(), |ev| match &ev.kind {
        EventKind::StepStarted { step, .. } if step == "first" => vec![Command::Pause { by: by() }],
        // the resume comes with the first projection after the 1 s step ended and the run sat paused
        EventKind::Projection { .. } if Run::secs(ev) >= 1.0 && !resumed => {
            resumed = true;
            vec![Command::Resume { by: by() }]
        }
        _ => Vec::new(),
    })
    .await;
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    let paused = r.find("RunPaused", |k| matches!(k, EventKind::RunPaused { .. }));
    let resumed = r.find("RunResumed", |k| matches!(k, EventKind::RunResumed { .. }));
    let second = r.started("second");
    assert!(paused.seq < r.succeeded("first").seq);
    assert!(resumed.seq < second.seq, "second started while paused\n{}", r.dump());
}

// ---------------------------------------------------------------------------------------------------------------
// operator commands

#[tokio::test(start_paused = true)]
async fn skip_a_running_step_with_a_reason() {
    let rb = runbook(
        r#"
[[step]]
id = "long"
title = "Long"
action = "wait"
with = { duration = "1h" }

[[step]]
id = "after"
title = "After"
action = "wait"
needs = ["long"]
with = { duration = "1s" }
"#,
    );
    let r = run_with(rb, config(), |ev| match &ev.kind {
        EventKind::StepStarted { step, .. } if step == "long" => {
            vec![Command::Skip { step: "long".into(), reason: "replica already in sync".into(), by: by() }]
        }
        _ => Vec::new(),
    })
    .await;
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    let skipped = r.find("StepSkipped", |k| matches!(k, EventKind::StepSkipped { .. }));
    let EventKind::StepSkipped { step, reason, by } = &skipped.kind else { unreachable!() };
    assert_eq!((step.as_str(), reason.as_str(), by.as_str()), ("long", "replica already in sync", "tester"));
    assert_eq!(r.status("long"), Status::Skipped);
    assert_eq!(r.status("after"), Status::Succeeded);
    assert!(Run::secs(r.finished()) < 2.0, "the hour was skipped\n{}", r.dump());
}

#[tokio::test(start_paused = true)]
async fn abort_stops_the_run() {
    let rb = runbook(PARALLEL);
    let r = run_with(rb, config(), |ev| match &ev.kind {
        EventKind::StepStarted { step, .. } if step == "b" => {
            vec![Command::Abort { reason: "wrong region".into(), by: by() }]
        }
        _ => Vec::new(),
    })
    .await;
    assert_eq!(r.result.outcome, Outcome::Aborted, "{}", r.dump());
    assert_eq!(r.result.message, "aborted by tester: wrong region");
    assert_eq!(r.result.outcome.exit_code(), 1);
    for s in ["a", "b", "c"] {
        assert_eq!(r.status(s), Status::Cancelled, "{s}\n{}", r.dump());
    }
    assert!(r.all(|k| matches!(k, EventKind::StepStarted { step, .. } if step == "c")).is_empty(), "{}", r.dump());
    // running steps stop at once; nothing waits for their 2 s
    assert_eq!(Run::secs(r.finished()), 0.0, "{}", r.dump());
    let EventKind::RunFinished { outcome, rto_met, .. } = &r.finished().kind else { unreachable!() };
    assert_eq!((*outcome, *rto_met), (Outcome::Aborted, false));
}

#[tokio::test(start_paused = true)]
async fn interrupt_cancels_running_steps() {
    let rb = runbook(PARALLEL);
    let r = run_with(rb, config(), |ev| match &ev.kind {
        EventKind::StepStarted { step, .. } if step == "b" => vec![Command::Interrupt],
        _ => Vec::new(),
    })
    .await;
    assert_eq!(r.result.outcome, Outcome::Interrupted, "{}", r.dump());
    assert_eq!(r.result.outcome.exit_code(), 130);
    for s in ["a", "b", "c"] {
        assert_eq!(r.status(s), Status::Cancelled, "{s}\n{}", r.dump());
    }
    // the waits notice the cancellation at once: nothing waits for their 2 s
    assert_eq!(Run::secs(r.finished()), 0.0, "{}", r.dump());
}

#[tokio::test(start_paused = true)]
async fn confirmation_waits_for_approval() {
    let rb = runbook(
        r#"
[[step]]
id = "cutover"
title = "Cut over"
action = "test.echo"
confirm = true
with = { value = "cut ${vars.name}" }
"#,
    );
    let handle = Engine::spawn(Arc::new(rb), registry(), config(), Clock::starting_at(t0(), 1.0));
    let mut events = handle.events;
    let mut seen = Vec::new();
    while let Some(ev) = events.recv().await {
        if let EventKind::StepAwaitingApproval { step, plan } = &ev.kind {
            assert_eq!((step.as_str(), plan.as_str()), ("cutover", "echo cut orders"));
            // the operator takes a minute to decide; nothing starts meanwhile
            tokio::time::sleep(Duration::from_secs(60)).await;
            handle.commands.send(Command::Approve { step: step.clone(), by: by() }).unwrap();
        }
        let last = matches!(ev.kind, EventKind::RunFinished { .. });
        seen.push(ev);
        if last {
            break;
        }
    }
    let r = Run { events: seen, result: handle.join.await.unwrap() };
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    let approved = r.find("StepApproved", |k| matches!(k, EventKind::StepApproved { .. }));
    assert_eq!(approved.kind, EventKind::StepApproved { step: "cutover".into(), by: by() });
    assert!(approx(Run::secs(r.started("cutover")), 60.0), "{}", r.dump());
    assert!(approved.seq < r.started("cutover").seq);
}

#[tokio::test(start_paused = true)]
async fn manual_step_is_answered_by_the_operator() {
    let rb = runbook(
        r#"
[[step]]
id = "call"
title = "Call the bank"
action = "manual"
with = { instructions = "Phone ${vars.name} support" }

[[step]]
id = "after"
title = "After"
action = "test.echo"
needs = ["call"]
with = { value = "confirmed by ${steps.call.done_by}" }
"#,
    );
    let r = run_with(rb, config(), |ev| match &ev.kind {
        EventKind::OperatorRequest { step, prompt } => {
            assert_eq!(prompt, &Prompt::Done { instructions: "Phone orders support".into() });
            vec![Command::Approve { step: step.clone(), by: "alice@bridge".into() }]
        }
        _ => Vec::new(),
    })
    .await;
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    let answered = r.find("OperatorAnswered", |k| matches!(k, EventKind::OperatorAnswered { .. }));
    let EventKind::OperatorAnswered { step, by, .. } = &answered.kind else { unreachable!() };
    assert_eq!((step.as_str(), by.as_str()), ("call", "alice@bridge"));
    let EventKind::StepSucceeded { outputs, .. } = &r.succeeded("after").kind else { unreachable!() };
    assert_eq!(outputs["value"], "confirmed by alice@bridge");
}

#[tokio::test(start_paused = true)]
async fn skip_a_step_awaiting_approval() {
    let rb = runbook(
        r#"
[[step]]
id = "risky"
title = "Risky"
action = "test.echo"
confirm = true
with = { value = "x" }

[[step]]
id = "after"
title = "After"
action = "wait"
needs = ["risky"]
with = { duration = "1s" }
"#,
    );
    let r = run_with(rb, config(), |ev| match &ev.kind {
        EventKind::StepAwaitingApproval { step, .. } => {
            vec![Command::Skip { step: step.clone(), reason: "not needed this time".into(), by: by() }]
        }
        _ => Vec::new(),
    })
    .await;
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    assert_eq!(r.status("risky"), Status::Skipped);
    assert_eq!(r.status("after"), Status::Succeeded);
    assert!(r.all(|k| matches!(k, EventKind::StepStarted { step, .. } if step == "risky")).is_empty());
}

#[tokio::test(start_paused = true)]
async fn missing_output_of_a_skipped_step_fails_with_a_clear_error() {
    let rb = runbook(
        r#"
[[step]]
id = "source"
title = "Source"
action = "test.echo"
confirm = true
with = { value = "x" }

[[step]]
id = "use"
title = "Uses source's output"
action = "test.echo"
needs = ["source"]
on_failure = "abort"
with = { value = "got ${steps.source.value}" }
"#,
    );
    let r = run_with(rb, config(), |ev| match &ev.kind {
        EventKind::StepAwaitingApproval { step, .. } => {
            vec![Command::Skip { step: step.clone(), reason: "skipped".into(), by: by() }]
        }
        _ => Vec::new(),
    })
    .await;
    assert_eq!(r.result.outcome, Outcome::Failed, "{}", r.dump());
    let failed = r.find("StepFailed", |k| matches!(k, EventKind::StepFailed { .. }));
    let EventKind::StepFailed { step, error, .. } = &failed.kind else { unreachable!() };
    assert_eq!(step, "use");
    assert!(error.contains("steps.source.value"), "the error names the reference: {error}");
}

#[tokio::test(start_paused = true)]
async fn a_step_that_ignores_cancellation_is_dropped_after_the_grace_period() {
    let rb = runbook(
        r#"
[[step]]
id = "stuck"
title = "Stuck"
action = "test.stubborn"
with = { work = "1h" }
"#,
    );
    let cfg = RunConfig { cancel_grace: Duration::from_secs(10), ..config() };
    let r = run_with(rb, cfg, |ev| match &ev.kind {
        EventKind::StepStarted { .. } => vec![Command::Abort { reason: "stop".into(), by: by() }],
        _ => Vec::new(),
    })
    .await;
    assert_eq!(r.result.outcome, Outcome::Aborted, "{}", r.dump());
    assert_eq!(r.status("stuck"), Status::Cancelled);
    let end = Run::secs(r.finished());
    assert!(approx(end, 10.0), "ended at {end}, not after the 10 s grace\n{}", r.dump());
}

#[tokio::test(start_paused = true)]
async fn a_frontend_that_goes_away_interrupts_the_run() {
    let rb = runbook(PARALLEL);
    let handle = Engine::spawn(Arc::new(rb), registry(), config(), Clock::starting_at(t0(), 1.0));
    let mut events = handle.events;
    let mut commands = Some(handle.commands);
    let mut last = None;
    while let Some(ev) = events.recv().await {
        if matches!(&ev.kind, EventKind::StepStarted { step, .. } if step == "b") {
            commands = None;
        }
        let end = matches!(ev.kind, EventKind::RunFinished { .. });
        last = Some(ev);
        if end {
            break;
        }
    }
    assert!(commands.is_none());
    let result = handle.join.await.unwrap();
    assert_eq!(result.outcome, Outcome::Interrupted);
    assert!(matches!(last.map(|e| e.kind), Some(EventKind::RunFinished { outcome: Outcome::Interrupted, .. })));
}

// ---------------------------------------------------------------------------------------------------------------
// the RTO clock

#[tokio::test(start_paused = true)]
async fn projection_moves_earlier_as_steps_finish_early() {
    // three steps in a chain, each expected to take 10 s but done in 2 s
    let rb = runbook(
        r#"
[[step]]
id = "one"
title = "One"
action = "wait"
expected = "10s"
with = { duration = "2s" }

[[step]]
id = "two"
title = "Two"
action = "wait"
expected = "10s"
needs = ["one"]
with = { duration = "2s" }

[[step]]
id = "three"
title = "Three"
action = "wait"
expected = "10s"
needs = ["two"]
with = { duration = "2s" }
"#,
    );
    let cfg =
        RunConfig { incident_start: Some(t0().checked_sub(jiff::SignedDuration::from_mins(30)).unwrap()), ..config() };
    let r = run_with(rb, cfg, |_| Vec::new()).await;
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    let projections: Vec<(f64, f64, Vec<String>, i64)> = r
        .all(|k| matches!(k, EventKind::Projection { .. }))
        .into_iter()
        .map(|e| match &e.kind {
            EventKind::Projection { projected_finish, critical_path, rto_left_secs, .. } => (
                Run::secs(e),
                projected_finish.duration_since(t0()).as_secs_f64(),
                critical_path.clone(),
                *rto_left_secs,
            ),
            _ => unreachable!(),
        })
        .collect();
    // at the start: 30 s of expected work, the whole chain is critical; the RTO clock started 30 min ago
    let (_, finish, path, left) = &projections[0];
    assert_eq!(*finish, 30.0);
    assert_eq!(path, &["one", "two", "three"]);
    assert_eq!(*left, 30 * 60);
    // after each step ends, the projection is now + what is left: 2 + 20, 4 + 10, 6 + 0
    let after = |step: &str| {
        let done = r.succeeded(step).seq;
        let ev = r.events.iter().find(|e| e.seq > done && matches!(e.kind, EventKind::Projection { .. })).unwrap();
        match &ev.kind {
            EventKind::Projection { projected_finish, critical_path, .. } => {
                (projected_finish.duration_since(t0()).as_secs_f64(), critical_path.clone())
            }
            _ => unreachable!(),
        }
    };
    for (step, want) in [("one", 22.0), ("two", 14.0), ("three", 6.0)] {
        assert!(approx(after(step).0, want), "after {step}: {} not {want}\n{}", after(step).0, r.dump());
    }
    assert_eq!(after("two").1, ["three"]);
    assert!(after("three").1.is_empty());
    // never later than before: it only shrinks in this run
    assert!(projections.windows(2).all(|w| w[1].1 <= w[0].1), "{projections:?}");
    let EventKind::RunFinished { rto_achieved_secs, rto_met, .. } = &r.finished().kind else { unreachable!() };
    assert_eq!((*rto_achieved_secs, *rto_met), (30 * 60 + 6, true));
}

// ---------------------------------------------------------------------------------------------------------------
// forecast

/// `first` finds a snapshot (and, with `size`, says its size); `copy` copies it for 60 s.
fn sized_runbook(size: Option<u64>) -> runbook::Runbook {
    let size = size.map_or(String::new(), |g| format!(", size_gib = {g}"));
    runbook(&format!(
        r#"
[[step]]
id = "first"
title = "First"
action = "rds.copy_snapshot"
with = {{ snapshot = "snap-1", work = "1s"{size} }}

[[step]]
id = "copy"
title = "Copy"
action = "rds.copy_snapshot"
needs = ["first"]
with = {{ snapshot = "${{steps.first.id}}", work = "60s" }}
"#
    ))
}

/// Three past runs in which `copy` copied 10 GiB in 10, 20 and 30 s (1, 2 and 3 s per GiB); `first` has no size.
fn sized_history(rb: &runbook::Runbook) -> Arc<drconsole::forecast::Forecast> {
    let records: Vec<drconsole::forecast::RunRecord> = [10u64, 20, 30]
        .iter()
        .enumerate()
        .map(|(i, secs)| {
            serde_json::from_value(json!({
                "run_id": format!("past-{i}"), "runbook": "engine-test", "backend": "sim", "outcome": "recovered",
                "started": "2026-11-20T03:00:00Z", "finished": "2026-11-20T03:01:00Z", "rto_achieved_secs": 60,
                "steps": [
                    {"id": "first", "action": "rds.copy_snapshot", "outcome": "succeeded", "secs": 1,
                     "machine_secs": 1, "wait_secs": 0, "attempts": 1},
                    {"id": "copy", "action": "rds.copy_snapshot", "outcome": "succeeded", "secs": secs,
                     "machine_secs": secs, "wait_secs": 0, "attempts": 1, "size_gib": 10.0},
                ],
            }))
            .unwrap()
        })
        .collect();
    Arc::new(drconsole::forecast::Forecast::build(rb, &registry(), "sim", &records, &std::collections::HashMap::new()))
}

/// A step learns its size from the step whose output it works on: its P50/P90 become the past rates × this size,
/// in the projection and in what counts as overdue, and it reports that size when it succeeds. Without the size,
/// the past durations apply.
#[tokio::test(start_paused = true)]
async fn a_size_learnt_while_running_rescales_the_steps_that_work_on_it() {
    let p50_after_first = |r: &Run| {
        let at =
            r.events.iter().position(|e| matches!(&e.kind, EventKind::StepSucceeded { step, .. } if step == "first"));
        r.events[at.unwrap()..]
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Projection { p50_finish: Some(f), p90_finish: Some(g), .. } => Some((
                    f.duration_since(e.ts).as_secs_f64().round() as u64,
                    g.duration_since(e.ts).as_secs_f64().round() as u64,
                )),
                _ => None,
            })
            .unwrap()
    };
    let overdue = |r: &Run| {
        r.all(|k| matches!(k, EventKind::StepOverdue { .. }))
            .iter()
            .map(|e| match &e.kind {
                EventKind::StepOverdue { step, p90_secs, .. } => (step.clone(), *p90_secs),
                _ => unreachable!(),
            })
            .collect::<Vec<_>>()
    };

    // no size: the past durations (P50 20 s, P90 30 s); 60 s of copying is past the P90
    let rb = sized_runbook(None);
    let cfg = RunConfig { forecast: Some(sized_history(&rb)), ..config() };
    let r = run_with(rb, cfg, |_| Vec::new()).await;
    assert_eq!(r.result.outcome, Outcome::Recovered, "{}", r.dump());
    assert_eq!(p50_after_first(&r), (20, 30), "{}", r.dump());
    assert_eq!(overdue(&r), vec![("copy".to_string(), 30)], "{}", r.dump());

    // 40 GiB: P50 2 s/GiB × 40 = 80 s, P90 3 s/GiB × 40 = 120 s; 60 s is within it
    let rb = sized_runbook(Some(40));
    let cfg = RunConfig { forecast: Some(sized_history(&rb)), ..config() };
    let r = run_with(rb, cfg, |_| Vec::new()).await;
    assert_eq!(p50_after_first(&r), (80, 120), "{}", r.dump());
    assert!(overdue(&r).is_empty(), "{}", r.dump());
    // the run says so (the run view reads the new P50/P90 from it)
    let f = r.find("StepForecast copy", |k| matches!(k, EventKind::StepForecast { step, .. } if step == "copy"));
    let EventKind::StepForecast { p50_secs, p90_secs, size_gib, .. } = &f.kind else { unreachable!() };
    assert_eq!((*p50_secs, *p90_secs, *size_gib), (80, 120, 40.0));
    // and `copy`, which does not say its size, reports the 40 GiB it worked on: the history learns its rate
    let EventKind::StepSucceeded { outputs, .. } = &r.succeeded("copy").kind else { unreachable!() };
    assert_eq!(outputs.get("size_gib"), Some(&json!(40.0)), "{}", r.dump());

    // 5 GiB: P90 15 s, and the 60 s copy is past it
    let rb = sized_runbook(Some(5));
    let cfg = RunConfig { forecast: Some(sized_history(&rb)), ..config() };
    let r = run_with(rb, cfg, |_| Vec::new()).await;
    assert_eq!(p50_after_first(&r), (10, 15), "{}", r.dump());
    assert_eq!(overdue(&r), vec![("copy".to_string(), 15)], "{}", r.dump());
}

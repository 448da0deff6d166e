#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Calibration of the forecast (docs/forecast.md): N seeded simulator runs of each of the customer's five
//! runbooks (each in its own world, on tokio's paused clock), the forecast learnt from the first half, checked on
//! the second: the fraction of finishes at or below the P90 forecast (target ≥ 85%) and the P50 error. The forecast
//! is the one a run gets at its start: the critical path on each step's P50 (P90) from the history. Also the same
//! learnt from every earlier run (rolling, from the 3rd run on). Measures and prints; does not gate.
//! `cargo bench --bench forecast_calibration --profile dev` (`-- N` for N runs per runbook, default 20).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drconsole::actions::Registry;
use drconsole::cloud::Cloud;
use drconsole::cloud::sim::Sim;
use drconsole::engine::{Clock, Command, Emitter, Engine, Event, EventKind, Prompt, RunConfig};
use drconsole::forecast::{Forecast, MIN_RUNS, RunRecord};
use drconsole::run::view::RunView;
use drconsole::runbook::{self, Runbook};
use drconsole::util::fmt_duration;

const APPS: &[&str] = &[
    "runbooks/cross-sell.toml",
    "runbooks/inventory-management.toml",
    "runbooks/agent-payment.toml",
    "runbooks/customer-assistance.toml",
    "runbooks/vendor-assistance.toml",
];

async fn run_once(rb: &Runbook, seed: u64) -> Vec<Event> {
    let clock = Clock::starting_at("2026-11-21T03:00:00Z".parse().unwrap(), 1.0);
    let sim = Arc::new(Sim::for_runbook(clock.clone(), seed, rb, None));
    let cloud = Arc::new(Cloud::from_all("sim", sim));
    let emitter = Emitter::new(clock.clone());
    let mut events_rx = emitter.subscribe();
    let cfg = RunConfig {
        run_id: format!("calib-{}-{seed}", rb.meta.name),
        seed,
        recovery_point: Some("latest+ebs=newest".into()),
        cloud: Some(cloud),
        backend: "sim".into(),
        ..RunConfig::default()
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let engine = Engine::new(Arc::new(rb.clone()), Registry::builtin(), cfg, clock, emitter);
    let join = tokio::spawn(engine.run(rx));
    let mut events = Vec::new();
    while let Some(ev) = events_rx.recv().await {
        let cmd = match &ev.kind {
            EventKind::StepAwaitingApproval { step, .. } => {
                Some(Command::Approve { step: step.clone(), by: "b".into() })
            }
            EventKind::OperatorRequest { step, prompt: Prompt::Choice { candidates, .. } } => {
                Some(Command::Answer { step: step.clone(), value: candidates[0].id.clone(), by: "b".into() })
            }
            EventKind::OperatorRequest { step, prompt: Prompt::Done { .. } } => {
                Some(Command::Approve { step: step.clone(), by: "b".into() })
            }
            EventKind::RunPaused { reason } => Some(Command::Abort { reason: reason.clone(), by: "b".into() }),
            _ => None,
        };
        let done = matches!(ev.kind, EventKind::RunFinished { .. });
        events.push(ev);
        if let Some(c) = cmd {
            let _ = tx.send(c);
        }
        if done {
            break;
        }
    }
    let _ = join.await;
    events
}

/// The forecast a run gets at its start: the critical path on P50 and on P90 durations.
fn band(rb: &Runbook, f: &Forecast) -> (Duration, Duration) {
    let d = |i: usize, p90: bool| {
        let s = f.step(&rb.steps[i].id).unwrap();
        Duration::from_secs(if p90 { s.p90_secs } else { s.p50_secs })
    };
    (rb.dag.critical_path(|i| d(i, false)).0, rb.dag.critical_path(|i| d(i, true)).0)
}

#[derive(Default)]
struct Tally {
    checked: usize,
    within_p90: usize,
    p50_abs_err: Vec<f64>,
    p50_signed_err: Vec<f64>,
    width: Vec<f64>,
}

impl Tally {
    fn add(&mut self, actual: Duration, (p50, p90): (Duration, Duration)) {
        self.checked += 1;
        if actual <= p90 {
            self.within_p90 += 1;
        }
        let a = actual.as_secs_f64().max(1.0);
        self.p50_abs_err.push((p50.as_secs_f64() - a).abs() / a);
        self.p50_signed_err.push((p50.as_secs_f64() - a) / a);
        self.width.push((p90.as_secs_f64() - p50.as_secs_f64()) / a);
    }
    fn line(&self, name: &str) -> String {
        let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
        let max = self.p50_abs_err.iter().copied().fold(0.0f64, f64::max);
        format!(
            "{name:<34} {:>4} {:>7.0}% {:>10.1}% {:>10.1}% {:>9.1}% {:>11.1}%",
            self.checked,
            100.0 * self.within_p90 as f64 / self.checked.max(1) as f64,
            100.0 * mean(&self.p50_abs_err),
            100.0 * max,
            100.0 * mean(&self.p50_signed_err),
            100.0 * mean(&self.width),
        )
    }
    fn merge(&mut self, o: &Tally) {
        self.checked += o.checked;
        self.within_p90 += o.within_p90;
        self.p50_abs_err.extend(&o.p50_abs_err);
        self.p50_signed_err.extend(&o.p50_signed_err);
        self.width.extend(&o.width);
    }
}

fn main() {
    let n: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20).max(4);
    let registry = Registry::builtin();
    let rbs: Vec<Runbook> =
        APPS.iter().map(|p| runbook::load(Path::new(p), &registry).unwrap_or_else(|d| panic!("{d}"))).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    let wall = std::time::Instant::now();
    let mut halves = Tally::default();
    let mut rolling = Tally::default();
    let mut rows = Vec::new();
    let mut spread = Vec::new();
    for rb in &rbs {
        let mut records: Vec<RunRecord> = Vec::new();
        let mut actual: Vec<Duration> = Vec::new();
        for seed in 1..=n {
            let events = rt.block_on(run_once(rb, seed * 7919));
            let view = RunView::from_events(&events);
            let rec = RunRecord::from_view(&view).expect("the run finished");
            assert_eq!(rec.outcome, "recovered", "{} seed {seed}", rb.meta.name);
            let started = events.first().unwrap().ts;
            actual.push(rec.finished.duration_since(started).unsigned_abs());
            records.push(rec);
        }
        let learn = (n / 2) as usize;
        let f = Forecast::build(rb, &registry, "sim", &records[..learn], &HashMap::new());
        let b = band(rb, &f);
        let mut t = Tally::default();
        for a in &actual[learn..] {
            t.add(*a, b);
        }
        let mut r = Tally::default();
        for k in MIN_RUNS..actual.len() {
            let f = Forecast::build(rb, &registry, "sim", &records[..k], &HashMap::new());
            r.add(actual[k], band(rb, &f));
        }
        let (lo, hi) = (actual.iter().min().unwrap(), actual.iter().max().unwrap());
        spread.push(format!(
            "{:<34} P50 {:>7} · P90 {:>7} (learnt from {learn}) · actual {} to {}",
            rb.meta.name,
            fmt_duration(b.0),
            fmt_duration(b.1),
            fmt_duration(*lo),
            fmt_duration(*hi)
        ));
        rows.push((t.line(&rb.meta.name), r.line(&rb.meta.name)));
        halves.merge(&t);
        rolling.merge(&r);
    }
    let head = format!(
        "{:<34} {:>4} {:>8} {:>11} {:>11} {:>10} {:>12}",
        "runbook", "runs", "≤ P90", "P50 |err|", "P50 max", "P50 bias", "P90-P50 band"
    );
    println!("forecast calibration: {n} seeded simulator runs per runbook, each in its own world\n");
    for s in &spread {
        println!("{s}");
    }
    println!("\nlearnt from the first {} runs, checked on the other {}:", n / 2, n - n / 2);
    println!("{head}");
    for (h, _) in &rows {
        println!("{h}");
    }
    println!("{}   (target ≤ P90: ≥ 85%)", halves.line("all"));
    println!("\nrolling: each run forecast from every earlier run (from the {MIN_RUNS}rd on):");
    println!("{head}");
    for (_, r) in &rows {
        println!("{r}");
    }
    println!("{}   (target ≤ P90: ≥ 85%)", rolling.line("all"));
    println!("\n{} runs in {:.1} s of real time", n as usize * rbs.len(), wall.elapsed().as_secs_f64());
}

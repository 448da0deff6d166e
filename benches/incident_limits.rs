#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The five-application incident on the simulator with AWS's rate limits metered: throttled responses with the
//! client-side limiter off and on, for AWS's default limits and for tight ones (an account whose limits other
//! tools already use up), with each application's total time against its critical path. Measures; does not gate.
//! `cargo bench --bench incident_limits` (or `cargo test --bench incident_limits` for a debug build: simulated
//! figures are the same, the clock is paused).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drconsole::actions::Registry;
use drconsole::cloud::Cloud;
use drconsole::cloud::limit::{Limit, Limits};
use drconsole::cloud::sim::{LimitFigures, Sim, provision};
use drconsole::engine::{Clock, Command, Emitter, Engine, Event, EventKind, Prompt, RunConfig};
use drconsole::runbook::{self, Runbook};

const APPS: &[&str] = &[
    "runbooks/cross-sell.toml",
    "runbooks/inventory-management.toml",
    "runbooks/agent-payment.toml",
    "runbooks/customer-assistance.toml",
    "runbooks/vendor-assistance.toml",
];

async fn drive(rb: Runbook, cloud: Arc<Cloud>, clock: Clock) -> Vec<Event> {
    let emitter = Emitter::new(clock.clone());
    let mut events_rx = emitter.subscribe();
    let cfg = RunConfig {
        run_id: format!("bench-{}", rb.meta.name),
        seed: 1,
        recovery_point: Some("latest+ebs=newest".into()),
        cloud: Some(cloud),
        backend: "sim".into(),
        ..RunConfig::default()
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let engine = Engine::new(Arc::new(rb), Registry::builtin(), cfg, clock, emitter);
    let join = tokio::spawn(engine.run(rx));
    let mut events = Vec::new();
    while let Some(ev) = events_rx.recv().await {
        let cmd = match &ev.kind {
            EventKind::StepAwaitingApproval { step, .. } => {
                Some(Command::Approve { step: step.clone(), by: "bench".into() })
            }
            EventKind::OperatorRequest { step, prompt: Prompt::Choice { candidates, .. } } => {
                Some(Command::Answer { step: step.clone(), value: candidates[0].id.clone(), by: "bench".into() })
            }
            EventKind::OperatorRequest { step, .. } => {
                Some(Command::Approve { step: step.clone(), by: "bench".into() })
            }
            EventKind::RunPaused { reason } => Some(Command::Abort { reason: reason.clone(), by: "bench".into() }),
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

struct Figures {
    outcomes: Vec<String>,
    worst_ratio: f64,
    longest: Duration,
    calls: u64,
    limits: LimitFigures,
}

fn incident(rbs: &[Runbook], limits: Limits) -> Figures {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    let (runs, calls, figures) = rt.block_on(async {
        let clock = Clock::starting_at("2026-11-21T03:00:00Z".parse().unwrap(), 1.0);
        let sim = Arc::new(Sim::for_runbook(clock.clone(), 1, &rbs[0], None));
        for rb in &rbs[1..] {
            for s in provision::seeds_from_runbook(rb) {
                sim.provision(&s);
            }
        }
        sim.set_limits(limits);
        let cloud = Arc::new(Cloud::from_all("sim", sim.clone()));
        let handles: Vec<_> =
            rbs.iter().map(|rb| tokio::spawn(drive(rb.clone(), cloud.clone(), clock.clone()))).collect();
        let mut runs = Vec::new();
        for h in handles {
            runs.push(h.await.unwrap());
        }
        (runs, sim.calls().values().sum::<u64>(), sim.limit_figures().unwrap_or_default())
    });
    let mut outcomes = Vec::new();
    let (mut worst, mut longest) = (0.0f64, Duration::ZERO);
    for (rb, events) in rbs.iter().zip(&runs) {
        let started = events.first().map(|e| e.ts).unwrap();
        let (finished, outcome) = events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::RunFinished { outcome, .. } => Some((e.ts, outcome.as_str())),
                _ => None,
            })
            .unwrap();
        outcomes.push(outcome.to_string());
        let total = finished.duration_since(started).unsigned_abs();
        let mut dur: HashMap<&str, Duration> = HashMap::new();
        for e in events {
            if let EventKind::StepSucceeded { step, duration_ms, .. } = &e.kind {
                dur.insert(step.as_str(), Duration::from_millis(*duration_ms));
            }
        }
        let (cp, _) = rb.dag.critical_path(|i| dur.get(rb.steps[i].id.as_str()).copied().unwrap_or_default());
        worst = worst.max(total.as_secs_f64() / cp.as_secs_f64().max(1.0));
        longest = longest.max(total);
    }
    Figures { outcomes, worst_ratio: worst, longest, calls, limits: figures }
}

fn main() {
    let registry = Registry::builtin();
    let rbs: Vec<Runbook> =
        APPS.iter().map(|p| runbook::load(Path::new(p), &registry).unwrap_or_else(|d| panic!("{d}"))).collect();
    let tight = |on: bool| {
        let mut l = Limits::aws_defaults();
        l.limiter = on;
        l.classes.insert("ec2.non-mutating".into(), Limit { burst: 10, rate: 0.5 });
        l.classes.insert("rds".into(), Limit { burst: 10, rate: 0.2 });
        l.classes.insert("route53".into(), Limit { burst: 5, rate: 0.2 });
        l
    };
    let defaults = |on: bool| Limits { limiter: on, ..Limits::aws_defaults() };
    println!("five-application incident on the simulator, AWS rate limits metered by the simulator\n");
    println!(
        "{:<44} {:>9} {:>10} {:>11} {:>10} {:>12} {:>10}",
        "limits / client limiter", "recovered", "API calls", "throttled", "held back", "longest run", "worst t/cp"
    );
    for (name, limits) in [
        ("AWS defaults, limiter off", defaults(false)),
        ("AWS defaults, limiter on", defaults(true)),
        ("tight (EC2 reads 10/0.5, RDS 10/0.2), off", tight(false)),
        ("tight (EC2 reads 10/0.5, RDS 10/0.2), on", tight(true)),
    ] {
        let f = incident(&rbs, limits);
        let recovered = f.outcomes.iter().filter(|o| *o == "recovered").count();
        let throttled: u64 = f.limits.throttled.values().sum();
        println!(
            "{name:<44} {:>7}/5 {:>10} {:>11} {:>10} {:>12} {:>10.3}",
            recovered,
            f.calls,
            throttled,
            f.limits.limiter_waits,
            drconsole::util::fmt_duration(f.longest),
            f.worst_ratio
        );
    }
}

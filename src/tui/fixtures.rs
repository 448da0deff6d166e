//! Synthetic runs for the console's snapshot tests and render benchmark: event sequences with fixed timestamps, so
//! screens are stable. Not part of the product.

use jiff::Timestamp;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use serde_json::{Map, Value, json};

use super::state::{Input, State};
use super::view::Screen;
use super::{StepNote, StepNotes, Theme};
use crate::engine::{Candidate, Event, EventKind, Outcome, Prompt, StepInfo};
use crate::runbook::OnFailure;

/// 2026-11-21T03:00:00Z: every fixture's run starts here.
pub fn t0() -> Timestamp {
    Timestamp::from_second(1_795_230_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn at(secs: i64) -> Timestamp {
    t0().checked_add(jiff::SignedDuration::from_secs(secs)).unwrap_or(t0())
}

/// Builds events with increasing `seq`.
#[derive(Default)]
pub struct Events {
    pub events: Vec<Event>,
}

impl Events {
    pub fn push(&mut self, secs: i64, kind: EventKind) -> &mut Self {
        let seq = self.events.len() as u64 + 1;
        self.events.push(Event::new(seq, at(secs), kind));
        self
    }
}

fn info(id: &str, title: &str, action: &str, needs: &[&str], expected_secs: u64, confirm: bool) -> StepInfo {
    StepInfo {
        id: id.into(),
        title: title.into(),
        action: action.into(),
        needs: needs.iter().map(|s| s.to_string()).collect(),
        expected_secs,
        confirm,
        on_failure: OnFailure::Pause,
        p50_secs: None,
        p90_secs: None,
    }
}

/// A failover of the Cross-sell application: nine steps, two parallel branches.
pub fn failover_steps() -> Vec<StepInfo> {
    vec![
        info("pick_point", "Choose the recovery point", "recovery_point.select", &[], 30, false),
        info("restore_db", "Restore the database in us-west-2", "rds.restore_snapshot", &["pick_point"], 1500, false),
        info(
            "restore_ebs",
            "Restore the app volumes from snapshots",
            "ebs.restore_volume",
            &["pick_point"],
            600,
            false,
        ),
        info("nat", "Create the NAT gateway", "nat.create_gateway", &[], 180, false),
        info("alb", "Create the load balancer", "elb.create_load_balancer", &["nat"], 240, false),
        info("asg", "Scale the auto scaling group to 3", "asg.set_capacity", &["alb", "restore_ebs"], 420, false),
        info("verify", "Check the application answers", "check.http", &["asg", "restore_db"], 20, false),
        info("dns_cutover", "Point app.example.com at us-west-2", "route53.change_record", &["verify"], 60, true),
        info("announce", "Tell the bridge we are back", "manual", &["dns_cutover"], 60, false),
    ]
}

pub fn notes() -> StepNotes {
    let mut n = StepNotes::new();
    n.insert(
        "dns_cutover".into(),
        StepNote {
            doc: Some("Moves customer traffic to us-west-2. Check the verify step first.".into()),
            destructive: true,
            confirm_name: "app.example.com".into(),
            confirm_what: "the record whose traffic moves".into(),
            needed_by: Vec::new(),
        },
    );
    n.insert(
        "restore_db".into(),
        StepNote {
            doc: Some("Restores crosssell-prod from the chosen snapshot; takes ~25 min for 400 GiB.".into()),
            destructive: false,
            confirm_name: "restore_db".into(),
            confirm_what: "the step id".into(),
            needed_by: vec![("verify".into(), vec!["${steps.restore_db.endpoint}".into()])],
        },
    );
    n.insert(
        "pick_point".into(),
        StepNote {
            doc: None,
            destructive: false,
            confirm_name: "pick_point".into(),
            confirm_what: "the step id".into(),
            needed_by: vec![
                ("restore_db".into(), vec!["${steps.pick_point.id}".into()]),
                ("restore_ebs".into(), vec!["${steps.pick_point.id}".into()]),
            ],
        },
    );
    n
}

fn params(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

pub fn run_started(steps: Vec<StepInfo>) -> EventKind {
    EventKind::RunStarted {
        run_id: "20261121-030000-a1b2".into(),
        runbook: "cross-sell-failover".into(),
        title: "Cross-sell: fail over to us-west-2".into(),
        app: "cross-sell".into(),
        path: "runbooks/cross-sell.toml".into(),
        sha256: "00".into(),
        backend: "sim".into(),
        account: Some("123456789012".into()),
        primary: "us-east-1".into(),
        secondary: "us-west-2".into(),
        incident_start: at(-600),
        rto_secs: 7200,
        rpo_secs: 3600,
        deadline: at(6600),
        speed: 1.0,
        steps,
        drill: false,
    }
}

pub fn candidates() -> Vec<Candidate> {
    let c = |id: &str, kind: &str, region: &str, age: i64, enc: bool, size: Option<u64>, met: bool| Candidate {
        id: id.into(),
        kind: kind.into(),
        region: region.into(),
        time: at(-age),
        age_secs: age,
        encrypted: enc,
        size_gib: size,
        rpo_met: met,
        arn: None,
        source: "aws-backup".into(),
    };
    vec![
        c("rds:crosssell-prod-2026-11-21-02-00", "rds-snapshot", "us-east-1", 3600, true, Some(400), true),
        c("rds:crosssell-prod-2026-11-21-02-00-copy", "rds-snapshot", "us-west-2", 3660, true, Some(400), true),
        c("rds:crosssell-prod-2026-11-21-01-00", "rds-snapshot", "us-west-2", 7200, true, Some(400), false),
        c("crosssell-pitr", "rds-pitr", "us-east-1", 300, true, None, true),
        c("snap-0a1b2c3d4e5f60718", "ebs-snapshot", "us-west-2", 2400, true, Some(1024), true),
        c("snap-unencrypted-legacy", "ebs-snapshot", "us-west-2", 40_000, false, Some(1024), false),
    ]
}

fn projection(margin: i64, path: &[&str]) -> EventKind {
    EventKind::Projection {
        elapsed_secs: 0,
        rto_left_secs: 0,
        projected_finish: at(6600 - margin),
        margin_secs: margin,
        critical_path: path.iter().map(|s| s.to_string()).collect(),
        p50_finish: None,
        p90_finish: None,
        history_runs: None,
        p90_critical_path: Vec::new(),
    }
}

/// The start of a run, up to the recovery point question.
pub fn until_picker() -> Events {
    let mut e = Events::default();
    e.push(0, run_started(failover_steps()));
    e.push(0, projection(4270, &["pick_point", "restore_db", "verify", "dns_cutover", "announce"]));
    e.push(
        1,
        EventKind::StepStarted {
            step: "pick_point".into(),
            attempt: 1,
            plan: "list recovery points for crosssell-prod".into(),
            params: params(&[("policy", json!("ask"))]),
        },
    );
    e.push(
        1,
        EventKind::StepStarted {
            step: "nat".into(),
            attempt: 1,
            plan: "create a NAT gateway in subnet-0abc (us-west-2)".into(),
            params: params(&[("subnet", json!("subnet-0abc")), ("region", json!("us-west-2"))]),
        },
    );
    e.push(
        3,
        EventKind::Resource {
            step: "nat".into(),
            phase: "creating".into(),
            kind: "nat-gateway".into(),
            id: "nat-0f00".into(),
            region: "us-west-2".into(),
            state: "pending".into(),
        },
    );
    e.push(
        4,
        EventKind::OperatorRequest {
            step: "pick_point".into(),
            prompt: Prompt::Choice {
                message: "Choose the recovery point for crosssell-prod (RPO 1h)".into(),
                candidates: candidates(),
            },
        },
    );
    e
}

/// A run in full swing: point chosen, the database restoring at 45%, a retry, the NAT gateway done.
pub fn running() -> Events {
    let mut e = until_picker();
    e.push(
        30,
        EventKind::OperatorAnswered {
            step: "pick_point".into(),
            answer: "rds:crosssell-prod-2026-11-21-02-00".into(),
            by: "alice@bastion".into(),
        },
    );
    e.push(
        30,
        EventKind::RecoveryPointChosen {
            step: "pick_point".into(),
            id: "rds:crosssell-prod-2026-11-21-02-00".into(),
            kind: "rds-snapshot".into(),
            region: "us-east-1".into(),
            time: at(-3600),
            rpo_secs: 3000,
            rpo_met: true,
            verdict: None,
            bound: false,
        },
    );
    e.push(
        30,
        EventKind::StepSucceeded {
            step: "pick_point".into(),
            attempt: 1,
            duration_ms: 29_000,
            outputs: params(&[("id", json!("rds:crosssell-prod-2026-11-21-02-00"))]),
        },
    );
    e.push(
        31,
        EventKind::StepStarted {
            step: "restore_db".into(),
            attempt: 1,
            plan: "restore crosssell-prod-dr from rds:crosssell-prod-2026-11-21-02-00 in us-west-2".into(),
            params: params(&[
                ("snapshot", json!("rds:crosssell-prod-2026-11-21-02-00")),
                ("instance", json!("crosssell-prod-dr")),
                ("region", json!("us-west-2")),
            ]),
        },
    );
    e.push(
        31,
        EventKind::StepStarted {
            step: "restore_ebs".into(),
            attempt: 1,
            plan: "create 2 volumes from snap-0a1b2c3d4e5f60718".into(),
            params: params(&[("snapshot", json!("snap-0a1b2c3d4e5f60718"))]),
        },
    );
    e.push(
        40,
        EventKind::Resource {
            step: "restore_db".into(),
            phase: "creating".into(),
            kind: "db-instance".into(),
            id: "crosssell-prod-dr".into(),
            region: "us-west-2".into(),
            state: "creating".into(),
        },
    );
    e.push(
        95,
        EventKind::StepRetrying {
            step: "restore_ebs".into(),
            attempt: 1,
            error: "RequestLimitExceeded: Request limit exceeded (request id 7f3a)".into(),
            delay_ms: 2400,
            cause: None,
        },
    );
    e.push(
        98,
        EventKind::StepStarted {
            step: "restore_ebs".into(),
            attempt: 2,
            plan: "create 2 volumes from snap-0a1b2c3d4e5f60718".into(),
            params: params(&[("snapshot", json!("snap-0a1b2c3d4e5f60718"))]),
        },
    );
    e.push(
        180,
        EventKind::Resource {
            step: "nat".into(),
            phase: "state".into(),
            kind: "nat-gateway".into(),
            id: "nat-0f00".into(),
            region: "us-west-2".into(),
            state: "available".into(),
        },
    );
    e.push(
        181,
        EventKind::StepSucceeded {
            step: "nat".into(),
            attempt: 1,
            duration_ms: 180_000,
            outputs: params(&[("nat_gateway_id", json!("nat-0f00"))]),
        },
    );
    e.push(
        182,
        EventKind::StepStarted {
            step: "alb".into(),
            attempt: 1,
            plan: "create load balancer crosssell-dr in us-west-2".into(),
            params: params(&[("name", json!("crosssell-dr"))]),
        },
    );
    e.push(
        600,
        EventKind::StepProgress {
            step: "restore_db".into(),
            message: "restoring 400 GiB: 180 GiB done".into(),
            percent: Some(45.0),
            cause: None,
        },
    );
    e.push(600, projection(1500, &["restore_db", "verify", "dns_cutover", "announce"]));
    e
}

/// The destructive DNS cut-over waiting for approval.
pub fn at_cutover() -> Events {
    let mut e = running();
    for (t, id) in [(1400, "alb"), (1500, "restore_ebs"), (1700, "asg"), (1800, "restore_db")] {
        if id == "asg" {
            e.push(
                1510,
                EventKind::StepStarted {
                    step: "asg".into(),
                    attempt: 1,
                    plan: "set crosssell-asg capacity to 3".into(),
                    params: Map::new(),
                },
            );
        }
        e.push(t, EventKind::StepSucceeded { step: id.into(), attempt: 1, duration_ms: 60_000, outputs: Map::new() });
    }
    e.push(
        1801,
        EventKind::StepStarted {
            step: "verify".into(),
            attempt: 1,
            plan: "GET https://dr.app.example.com/health, expect 200".into(),
            params: params(&[("url", json!("https://dr.app.example.com/health"))]),
        },
    );
    e.push(
        1803,
        EventKind::StepSucceeded {
            step: "verify".into(),
            attempt: 1,
            duration_ms: 2000,
            outputs: params(&[("status", json!(200))]),
        },
    );
    e.push(
        1803,
        EventKind::StepAwaitingApproval {
            step: "dns_cutover".into(),
            plan: "UPSERT app.example.com CNAME crosssell-dr-123.us-west-2.elb.amazonaws.com (TTL 60)".into(),
        },
    );
    e.push(1803, projection(5000 - 1803, &["dns_cutover", "announce"]));
    e
}

/// The database restore failed and paused the run.
pub fn failed() -> Events {
    let mut e = running();
    e.push(
        900,
        EventKind::StepFailed {
            step: "restore_db".into(),
            attempt: 1,
            error: "rds RestoreDBInstanceFromDBSnapshot: KMSKeyNotAccessibleFault: The specified KMS key \
                    arn:aws:kms:us-west-2:123456789012:key/1234abcd is not accessible (request id 5c1d-9e2f)\n\
                    hint: the snapshot copy is encrypted with a key the DR role cannot use"
                .into(),
            policy: OnFailure::Pause,
            cause: None,
        },
    );
    e.push(900, EventKind::RunPaused { reason: "step `restore_db` failed: KMSKeyNotAccessibleFault".into() });
    e.push(900, projection(-600, &["restore_db", "verify", "dns_cutover", "announce"]));
    e
}

/// A run that recovered.
pub fn finished() -> Events {
    let mut e = at_cutover();
    e.push(1830, EventKind::StepApproved { step: "dns_cutover".into(), by: "alice@bastion".into() });
    e.push(
        1830,
        EventKind::StepStarted {
            step: "dns_cutover".into(),
            attempt: 1,
            plan: "UPSERT app.example.com CNAME".into(),
            params: Map::new(),
        },
    );
    e.push(
        1890,
        EventKind::StepSucceeded {
            step: "dns_cutover".into(),
            attempt: 1,
            duration_ms: 60_000,
            outputs: params(&[("change_id", json!("C0123456789"))]),
        },
    );
    e.push(
        1890,
        EventKind::StepSkipped {
            step: "announce".into(),
            reason: "announced by the incident commander".into(),
            by: "alice@bastion".into(),
        },
    );
    e.push(
        1891,
        EventKind::RunFinished {
            outcome: Outcome::Recovered,
            duration_secs: 1891,
            rto_secs: 7200,
            rto_achieved_secs: 2491,
            rto_met: true,
            succeeded: 8,
            failed: 0,
            skipped: 1,
            cancelled: 0,
            message: "every step succeeded or was skipped".into(),
        },
    );
    e
}

/// A state fed with `events`, ticked to the last event's time (+`tick` seconds).
pub fn state(events: &Events, control: bool, size: (u16, u16)) -> State {
    let mut s = State::new(notes(), "alice@bastion".into(), control);
    s.handle(Input::Resize(size.0, size.1));
    for ev in &events.events {
        s.handle(Input::Event(Box::new(ev.clone())));
    }
    if let Some(last) = events.events.last() {
        s.handle(Input::Tick(last.ts));
    }
    // real time has passed: popups that opened by themselves take keys
    s.handle(Input::Instant(10_000));
    s
}

/// The picker when no candidate meets the RPO (every backup is older than an hour).
pub fn stale_picker() -> Events {
    let mut e = until_picker();
    if let Some(Event { kind: EventKind::OperatorRequest { prompt: Prompt::Choice { candidates, .. }, .. }, .. }) =
        e.events.last_mut()
    {
        candidates.retain(|c| !c.rpo_met);
    }
    e
}

/// A run while the primary region does not answer: its listing failed, a call in it is retried.
pub fn region_outage() -> Events {
    let mut e = until_picker();
    e.push(
        3,
        EventKind::StepProgress {
            step: "pick_point".into(),
            message: "us-east-1: cannot list recovery points: rds DescribeDBSnapshots in us-east-1 failed: \
                      ServiceUnavailable: region us-east-1 is unavailable (request id sim-0001)"
                .into(),
            percent: None,
            cause: Some(crate::run::ErrorCause {
                service: "rds".into(),
                operation: "DescribeDBSnapshots".into(),
                region: "us-east-1".into(),
                code: "ServiceUnavailable".into(),
                kind: "transient".into(),
                unreachable: true,
            }),
        },
    );
    e
}

/// Renders a state into a TestBackend buffer.
pub fn render(state: &State, theme: &Theme, w: u16, h: u16) -> Buffer {
    let backend = TestBackend::new(w, h);
    let Ok(mut term) = Terminal::new(backend);
    let _ = term.draw(|f| f.render_widget(Screen { state, theme }, f.area()));
    term.backend().buffer().clone()
}

/// The buffer's text, one line a row, trailing spaces removed.
pub fn text(buf: &Buffer) -> String {
    let a = buf.area;
    let mut out = String::new();
    for y in a.y..a.y + a.height {
        let mut line = String::new();
        for x in a.x..a.x + a.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The buffer's styles: per row, runs of one style as `x..x fg/bg +modifiers "text"` (default-styled runs are
/// left out), so a snapshot sees colours.
pub fn styles(buf: &Buffer) -> String {
    let a = buf.area;
    let mut out = String::new();
    for y in a.y..a.y + a.height {
        let mut x = a.x;
        let mut runs = Vec::new();
        while x < a.x + a.width {
            let c = &buf[(x, y)];
            let key = (c.fg, c.bg, c.modifier);
            let start = x;
            let mut txt = String::new();
            while x < a.x + a.width {
                let d = &buf[(x, y)];
                if (d.fg, d.bg, d.modifier) != key {
                    break;
                }
                txt.push_str(d.symbol());
                x += 1;
            }
            let plain =
                key.0 == ratatui::style::Color::Reset && key.1 == ratatui::style::Color::Reset && key.2.is_empty();
            if !plain && !txt.trim().is_empty() {
                let t: String = txt.trim().chars().take(24).collect();
                runs.push(format!("  {start}..{x} {:?}/{:?} {:?} {t:?}", key.0, key.1, key.2));
            }
        }
        if !runs.is_empty() {
            out.push_str(&format!("row {y}\n{}\n", runs.join("\n")));
        }
    }
    out
}

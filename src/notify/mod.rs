//! Notifications to the incident bridge: a JSON POST to each webhook (`--notify URL`, `[notify] webhooks` in a
//! runbook or an incident file, env `DRCONSOLE_NOTIFY`) when a run or incident starts, a step fails, the run
//! pauses, a person is awaited, the projected finish crosses into at risk or late, a region becomes unreachable,
//! and the run finishes.
//!
//! The body is `{"text", "app", "run_id", "incident_id", "event", "drill", ...}`: `text` is a sentence that Slack
//! and Teams incoming webhooks display as is (a drill's says DRILL).
//!
//! Delivery never blocks or fails the run: the event sink ([`NotifySink`]) turns events into messages and hands
//! them to a delivery task through a bounded channel (`try_send`: a full queue drops the message and says so in
//! the delivery log); the task POSTs each with a per-request timeout and bounded retries with backoff. Every
//! delivery is logged in the run directory's `notify.jsonl` side file (read by the report's "Notifications"
//! section; a run without it has none). A webhook URL is a secret (Slack's and Teams' carry their token in the
//! path): it is registered with the run's secret redaction and shown or logged only as `scheme://host/***`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::run::{Event, EventKind, EventSink, Prompt, RunView};

pub mod log;
use log::append_log;
pub use log::{Delivery, LOG_FILE, read_log};

/// The environment variable naming webhooks (comma- or space-separated).
pub const ENV: &str = "DRCONSOLE_NOTIFY";
/// Messages waiting for delivery at most; more are dropped (and logged as dropped).
const QUEUE: usize = 64;
/// Attempts per message and webhook, and the waits between them.
const ATTEMPTS: u32 = 3;
const BACKOFF: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(2)];
/// One request's limit (connect, send, answer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the process waits, after the run ended, for the last notifications to go out.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

static CLI: OnceLock<Vec<String>> = OnceLock::new();
static PENDING: Mutex<Vec<tokio::task::JoinHandle<()>>> = Mutex::new(Vec::new());

/// A webhook URL that can be used: http or https, with a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("`{}` is not a URL ({e})", redact_url(url)))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("`{}`: a webhook is an http:// or https:// URL", redact_url(url)));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{}`: the URL has no host", redact_url(url)));
    }
    Ok(())
}

/// A webhook URL as it may be shown or logged: `scheme://host[:port]/***` (user info, path and query, where
/// Slack and Teams keep their tokens, hidden).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) if u.host_str().is_some() => {
            let host = u.host_str().unwrap_or_default();
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let hidden = u.path() != "/" || u.query().is_some() || !u.username().is_empty() || u.password().is_some();
            format!("{}://{host}{port}/{}", u.scheme(), if hidden { "***" } else { "" })
        }
        _ => "***".to_string(),
    }
}

/// Splits `DRCONSOLE_NOTIFY`'s value into URLs.
fn split_env(v: &str) -> Vec<String> {
    v.split([',', ' ', '\n', '\t']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Takes `--notify` URLs and `DRCONSOLE_NOTIFY` for this process; a bad URL is a usage error (nothing started).
pub fn configure(cli: &[String]) -> Result<(), String> {
    let mut urls = cli.to_vec();
    if let Ok(v) = std::env::var(ENV) {
        urls.extend(split_env(&v));
    }
    for u in &urls {
        check_url(u).map_err(|e| format!("--notify / {ENV}: {e}"))?;
    }
    let _ = CLI.set(urls);
    Ok(())
}

/// The webhooks of a run: `--notify`, `DRCONSOLE_NOTIFY` and the runbook's (and incident file's) `[notify]`,
/// each once.
pub fn webhooks(runbook: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for u in CLI.get().into_iter().flatten().chain(runbook) {
        if !out.contains(u) {
            out.push(u.clone());
        }
    }
    out
}

/// What a run's notifications say about it.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub app: String,
    pub run_id: String,
    pub incident_id: Option<String>,
    pub drill: bool,
    /// The run directory (the delivery log and the report are there).
    pub run_dir: PathBuf,
}

/// One notification's body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    /// A sentence for people (Slack and Teams show it as is).
    pub text: String,
    pub app: String,
    pub run_id: String,
    pub incident_id: Option<String>,
    /// run_started, step_failed, run_paused, awaiting_person, at_risk, late, on_track, region_unreachable,
    /// run_finished; for an incident as a whole (empty `app` and `run_id`): incident_started, incident_finished.
    pub event: String,
    pub drill: bool,
    /// The event's particulars (step, error, outcome, rto_secs...).
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

/// The projection's standing: one definition of "at risk" for the notifications and the console.
use crate::run::Schedule as Standing;

/// Turns a run's events into notifications (pure: no I/O). The run's facts (its RTO, the RPO verdict, the
/// outcome word) come from its [`RunView`], folded here as in every other output; what the translator keeps itself is
/// what it last told the bridge (the RTO standing).
#[derive(Debug, Clone)]
pub struct Translate {
    cx: Context,
    view: RunView,
    risk: Standing,
}

fn hm(secs: u64) -> String {
    crate::util::fmt_duration(Duration::from_secs(secs))
}

fn one_line(s: &str) -> String {
    let l = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if l.chars().count() > 300 { format!("{}…", l.chars().take(300).collect::<String>()) } else { l }
}

impl Translate {
    pub fn new(cx: Context) -> Self {
        Self { cx, view: RunView::new(), risk: Standing::OnTrack }
    }

    fn msg(&self, event: &str, text: String, details: Value) -> Message {
        let who = match &self.cx.incident_id {
            Some(i) => format!("{} (run {}, incident {i})", self.cx.app, self.cx.run_id),
            None => format!("{} (run {})", self.cx.app, self.cx.run_id),
        };
        let drill = if self.cx.drill { "DRILL — " } else { "" };
        let details = match details {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Message {
            text: format!("{drill}drconsole: {who}: {text}"),
            app: self.cx.app.clone(),
            run_id: self.cx.run_id.clone(),
            incident_id: self.cx.incident_id.clone(),
            event: event.to_string(),
            drill: self.cx.drill,
            details,
        }
    }

    /// The notification an event calls for, if any.
    pub fn message(&mut self, ev: &Event) -> Option<Message> {
        use serde_json::json;
        self.view.apply(ev);
        match &ev.kind {
            EventKind::RunStarted { title, rto_secs, rpo_secs, deadline, drill, .. } => {
                self.cx.drill |= *drill;
                Some(self.msg(
                    "run_started",
                    format!("recovery started — {title}; RTO {}, deadline {deadline}", hm(*rto_secs)),
                    json!({ "title": title, "rto_secs": rto_secs, "rpo_secs": rpo_secs, "deadline": deadline }),
                ))
            }
            EventKind::StepFailed { step, attempt, error, policy, .. } => {
                let policy = serde_json::to_value(policy).ok().and_then(|v| v.as_str().map(str::to_string));
                let policy = policy.unwrap_or_default();
                Some(self.msg(
                    "step_failed",
                    format!("step `{step}` FAILED (attempt {attempt}): {}; on failure: {policy}", one_line(error)),
                    json!({ "step": step, "attempt": attempt, "error": error, "on_failure": policy }),
                ))
            }
            EventKind::StepOverdue { step, running_secs, p50_secs, p90_secs, samples } => {
                let d = |x: u64| crate::util::fmt_duration(std::time::Duration::from_secs(x));
                Some(self.msg(
                    "step_overdue",
                    format!(
                        "AT RISK: step `{step}` has run {}, past its P90 of {}; typically {} (P50 of {samples} past runs)",
                        d(*running_secs),
                        d(*p90_secs),
                        d(*p50_secs)
                    ),
                    json!({ "step": step, "running_secs": running_secs, "p50_secs": p50_secs, "p90_secs": p90_secs }),
                ))
            }
            EventKind::RunPaused { reason } => Some(self.msg(
                "run_paused",
                format!("the run is PAUSED: {}", one_line(reason)),
                json!({ "reason": reason }),
            )),
            EventKind::StepAwaitingApproval { step, .. } => Some(self.msg(
                "awaiting_person",
                format!("waiting for a person: confirm step `{step}` before it starts"),
                json!({ "step": step, "waiting_for": "approval" }),
            )),
            EventKind::OperatorRequest { step, prompt } => {
                let (what, text) = match prompt {
                    Prompt::Done { instructions } => {
                        ("manual_task", format!("a manual task, step `{step}`: {}", one_line(instructions)))
                    }
                    Prompt::Choice { message, candidates } => (
                        "choice",
                        format!(
                            "a choice, step `{step}`: {} ({} candidate{})",
                            one_line(message),
                            candidates.len(),
                            if candidates.len() == 1 { "" } else { "s" }
                        ),
                    ),
                };
                Some(self.msg(
                    "awaiting_person",
                    format!("waiting for a person: {text}"),
                    json!({ "step": step, "waiting_for": what }),
                ))
            }
            EventKind::Projection { projected_finish, margin_secs, rto_left_secs, .. } => {
                let rto_secs = self.view.run.as_ref().map_or(0, |r| r.rto_secs);
                let risk = Standing::of(*margin_secs, rto_secs);
                if risk == self.risk {
                    return None;
                }
                let was = self.risk;
                self.risk = risk;
                let details = json!({ "projected_finish": projected_finish, "margin_secs": margin_secs,
                    "rto_left_secs": rto_left_secs });
                Some(match risk {
                    Standing::Late => self.msg(
                        "late",
                        format!(
                            "LATE: the projected finish {projected_finish} is {} past the RTO deadline",
                            hm(margin_secs.unsigned_abs())
                        ),
                        details,
                    ),
                    Standing::AtRisk => self.msg(
                        "at_risk",
                        format!(
                            "RTO AT RISK: the projected finish {projected_finish} leaves {} before the deadline",
                            hm(margin_secs.unsigned_abs())
                        ),
                        details,
                    ),
                    Standing::OnTrack => self.msg(
                        "on_track",
                        format!(
                            "back on track (was {}): the projected finish {projected_finish} leaves {}",
                            if was == Standing::Late { "late" } else { "at risk" },
                            hm(margin_secs.unsigned_abs())
                        ),
                        details,
                    ),
                })
            }
            EventKind::RunFinished { outcome, rto_achieved_secs, rto_met, rto_secs, message, .. } => {
                let report = self.cx.run_dir.join("report.md");
                let r = self.view.rpo();
                let rpo = match (r.achieved_secs, r.verdict) {
                    (Some(s), Some(v)) => {
                        format!("RPO {} {} (target {})", crate::run::fmt_loss(s, r.bound), v.shout(), hm(r.target_secs))
                    }
                    _ => "RPO unknown (no recovery point chosen)".to_string(),
                };
                // the outcome as every output says it: `recovered-late` when the RTO or the RPO was missed
                let word = self.view.outcome_word().unwrap_or(outcome.as_str()).to_uppercase();
                Some(self.msg(
                    "run_finished",
                    format!(
                        "the run finished: {word} — RTO {} {} (target {}); {rpo}; report: {}",
                        hm(*rto_achieved_secs),
                        if *rto_met { "met" } else { "MISSED" },
                        hm(*rto_secs),
                        report.display()
                    ),
                    json!({ "outcome": outcome, "rto_secs": rto_secs, "rto_achieved_secs": rto_achieved_secs,
                        "rto_met": rto_met, "rpo_achieved_secs": r.achieved_secs, "rpo_met": r.met,
                        "rpo_verdict": r.verdict, "rpo_bound": r.bound, "verdict": self.view.outcome_word(),
                        "report": report.display().to_string(),
                        "message": message }),
                ))
            }
            EventKind::RegionUnreachable { region, evidence, since } => {
                let evidence = one_line(evidence);
                Some(self.msg(
                    "region_unreachable",
                    format!("region {region} became UNREACHABLE: {evidence}"),
                    serde_json::json!({ "region": region, "evidence": evidence, "since": since }),
                ))
            }
            _ => None,
        }
    }
}

/// The event sink that feeds the delivery task; it never waits.
pub struct NotifySink {
    translate: Translate,
    tx: Option<mpsc::Sender<Message>>,
    dropped: Arc<AtomicU64>,
    dir: PathBuf,
    urls: Vec<String>,
}

impl EventSink for NotifySink {
    fn event(&mut self, ev: &Event) {
        let finished = matches!(ev.kind, EventKind::RunFinished { .. });
        if let (Some(m), Some(tx)) = (self.translate.message(ev), &self.tx)
            && let Err(mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m)) = tx.try_send(m)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            for u in &self.urls {
                append_log(
                    &self.dir,
                    &Delivery {
                        at: Timestamp::now(),
                        event: m.event.clone(),
                        url: redact_url(u),
                        result: "dropped".into(),
                        attempts: 0,
                        status: None,
                        error: Some("the notification queue was full".into()),
                    },
                );
            }
        }
        if finished {
            // the last notification: the delivery task ends once it has sent what is queued
            self.tx = None;
        }
    }
}

/// Starts the delivery task on the current tokio runtime (call it from inside the run's real-time runtime, not
/// the simulator's paced one) and returns the sink to add to the run's emitter; `None` without webhooks.
pub fn start(cx: Context, urls: Vec<String>) -> Option<NotifySink> {
    if urls.is_empty() {
        return None;
    }
    let rt = tokio::runtime::Handle::try_current().ok()?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let dir = cx.run_dir.clone();
    let task = rt.spawn(deliver(rx, urls.clone(), dir.clone()));
    PENDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(task);
    Some(NotifySink { translate: Translate::new(cx), tx: Some(tx), dropped: Arc::default(), dir, urls })
}

/// An incident-level notification (`incident_started`, `incident_finished`): `app` and `run_id` are empty (the
/// applications and their runs are in `apps`), `text` names the incident.
pub fn incident_message(event: &str, incident_id: &str, drill: bool, text: String, details: Value) -> Message {
    let drill_word = if drill { "DRILL — " } else { "" };
    Message {
        text: format!("{drill_word}drconsole: incident {incident_id}: {}", one_line(&text)),
        app: String::new(),
        run_id: String::new(),
        incident_id: Some(incident_id.to_string()),
        event: event.to_string(),
        drill,
        details: match details {
            Value::Object(m) => m,
            _ => Map::new(),
        },
    }
}

/// Sends one incident-level notification to `urls` on `rt`, never waiting for it (bounded retries as for a run's;
/// the delivery log is `dir`'s `notify.jsonl`, the incident's directory); [`drain`] waits for it at the end.
pub fn send_incident(rt: &tokio::runtime::Runtime, urls: Vec<String>, dir: PathBuf, m: Message) {
    if urls.is_empty() {
        return;
    }
    let (tx, rx) = mpsc::channel(1);
    if tx.try_send(m).is_err() {
        return;
    }
    drop(tx);
    let task = rt.spawn(deliver(rx, urls, dir));
    PENDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(task);
}

/// Waits (at most [`DRAIN_TIMEOUT`]) for every run's last notifications; call once the runs have ended.
pub fn drain(rt: &tokio::runtime::Runtime) {
    let tasks: Vec<_> = std::mem::take(&mut *PENDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    if tasks.is_empty() {
        return;
    }
    let all = futures::future::join_all(tasks);
    if rt.block_on(async { tokio::time::timeout(DRAIN_TIMEOUT, all).await }).is_err() {
        eprintln!(
            "drconsole: some notifications were still being sent after {}s; see the run's {LOG_FILE}",
            DRAIN_TIMEOUT.as_secs()
        );
    }
}

async fn deliver(mut rx: mpsc::Receiver<Message>, urls: Vec<String>, dir: PathBuf) {
    let client = match reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("drconsole/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("drconsole: notifications are off: cannot make an HTTP client: {e}");
            return;
        }
    };
    let mut finished = false;
    while let Some(m) = rx.recv().await {
        finished |= m.event == "run_finished";
        for url in &urls {
            let d = post(&client, url, &m).await;
            if d.result != "delivered" {
                eprintln!(
                    "drconsole: notification `{}` to {} not delivered: {}",
                    d.event,
                    d.url,
                    d.error.as_deref().unwrap_or("?")
                );
            }
            append_log(&dir, &d);
        }
    }
    if finished && dir.join("report.md").is_file() {
        // the report was written when the run's end was recorded, before the last notification went out
        if let Err(e) = crate::journal::report::write_all(&dir) {
            eprintln!("drconsole: cannot add the notifications to the report: {e}");
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, m: &Message) -> Delivery {
    let shown = redact_url(url);
    let mut last_err = String::new();
    let mut status = None;
    let mut attempts = 0;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(BACKOFF[(attempt as usize - 1).min(BACKOFF.len() - 1)]).await;
        }
        attempts = attempt + 1;
        let body = match serde_json::to_vec(m) {
            Ok(b) => b,
            Err(e) => {
                last_err = format!("cannot encode the notification: {e}");
                break;
            }
        };
        let sent = client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body).send().await;
        match sent {
            Ok(r) if r.status().is_success() => {
                return Delivery {
                    at: Timestamp::now(),
                    event: m.event.clone(),
                    url: shown,
                    result: "delivered".into(),
                    attempts,
                    status: Some(r.status().as_u16()),
                    error: None,
                };
            }
            Ok(r) => {
                status = Some(r.status().as_u16());
                last_err = format!("HTTP {}", r.status());
            }
            Err(e) => {
                status = None;
                // reqwest names the URL in its errors: never the secret one
                last_err = error_text(&e.without_url()).replace(url, &shown);
            }
        }
    }
    Delivery {
        at: Timestamp::now(),
        event: m.event.clone(),
        url: shown,
        result: "failed".into(),
        attempts,
        status,
        error: Some(last_err),
    }
}

/// An error with its causes (`connection refused` is a cause of reqwest's "error sending request").
fn error_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind) -> Event {
        Event::new(1, Timestamp::UNIX_EPOCH, kind)
    }

    #[test]
    fn urls_are_shown_without_their_secrets() {
        assert_eq!(redact_url("https://hooks.slack.com/services/T0/B0/XYZ"), "https://hooks.slack.com/***");
        assert_eq!(redact_url("http://u:p@127.0.0.1:8080/x?token=1"), "http://127.0.0.1:8080/***");
        assert_eq!(redact_url("http://example.com/"), "http://example.com/");
        assert_eq!(redact_url("not a url secret"), "***");
        assert!(check_url("ftp://x/y").is_err());
        let e = check_url("https//hooks.slack.com/services/SECRET").err().unwrap_or_default();
        assert!(!e.contains("SECRET"), "{e}");
        assert!(check_url("https://hooks.slack.com/services/x").is_ok());
        assert_eq!(split_env("http://a/1, http://b/2 http://c/3"), ["http://a/1", "http://b/2", "http://c/3"]);
    }

    #[test]
    fn the_projection_notifies_when_it_crosses_into_at_risk_and_late_only() {
        let mut t = Translate::new(Context { app: "a".into(), run_id: "r".into(), drill: true, ..Context::default() });
        assert!(t.message(&ev(run_started(1000))).is_some());
        let p = |margin| {
            ev(EventKind::Projection {
                elapsed_secs: 0,
                rto_left_secs: 0,
                projected_finish: Timestamp::UNIX_EPOCH,
                margin_secs: margin,
                critical_path: vec![],
                p50_finish: None,
                p90_finish: None,
                history_runs: None,
                p90_critical_path: Vec::new(),
            })
        };
        assert!(t.message(&p(500)).is_none());
        let m = t.message(&p(50)).map(|m| (m.event, m.text));
        assert_eq!(m.as_ref().map(|m| m.0.as_str()), Some("at_risk"));
        assert!(m.is_some_and(|m| m.1.starts_with("DRILL — ")));
        assert!(t.message(&p(40)).is_none());
        assert_eq!(t.message(&p(-10)).map(|m| m.event).as_deref(), Some("late"));
        assert!(t.message(&p(-20)).is_none());
        assert_eq!(t.message(&p(900)).map(|m| m.event).as_deref(), Some("on_track"));
    }

    fn run_started(rto_secs: u64) -> EventKind {
        EventKind::RunStarted {
            run_id: "r".into(),
            runbook: "rb".into(),
            title: "t".into(),
            app: "a".into(),
            path: "p".into(),
            sha256: String::new(),
            backend: "sim".into(),
            account: None,
            primary: "us-east-1".into(),
            secondary: "us-west-2".into(),
            incident_start: Timestamp::UNIX_EPOCH,
            rto_secs,
            rpo_secs: 3600,
            deadline: Timestamp::UNIX_EPOCH,
            speed: 1.0,
            steps: Vec::new(),
            drill: false,
        }
    }

    /// The last notification says what every other output says: the outcome word (`recovered-late`) and the run
    /// view's RPO verdict, a bounded age shown as `≥`.
    #[test]
    fn the_last_notification_carries_the_run_views_verdicts() {
        let mut t = Translate::new(Context { app: "a".into(), run_id: "r".into(), ..Context::default() });
        t.message(&ev(run_started(7200)));
        t.message(&ev(EventKind::RecoveryPointChosen {
            step: "pick".into(),
            id: "ebs:snap".into(),
            kind: "ebs-snapshot".into(),
            region: "us-west-2".into(),
            time: Timestamp::UNIX_EPOCH,
            rpo_secs: 1200,
            rpo_met: true,
            verdict: Some(crate::run::RpoVerdict::Unknown),
            bound: true,
        }));
        let m = t
            .message(&ev(EventKind::RunFinished {
                outcome: crate::run::Outcome::Recovered,
                duration_secs: 8000,
                rto_secs: 7200,
                rto_achieved_secs: 8000,
                rto_met: false,
                succeeded: 1,
                failed: 0,
                skipped: 0,
                cancelled: 0,
                message: String::new(),
            }))
            .unwrap();
        assert!(m.text.contains("the run finished: RECOVERED-LATE — RTO"), "{}", m.text);
        assert!(m.text.contains("RPO ≥ 20m00s UNKNOWN (target 1h00m)"), "{}", m.text);
        assert_eq!(m.details["verdict"], "recovered-late");
        assert_eq!(m.details["rpo_verdict"], "unknown");
        assert_eq!(m.details["rpo_bound"], true);
    }
}

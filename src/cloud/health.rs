//! Region health: one circuit per region (or per global service's control plane), shared by every application of
//! a process as the rate limiter is, so a region that stops answering costs seconds once, not the RTO per call.
//!
//! Every call to the cloud goes through [`RegionHealth::guard`] (the AWS adapter's HTTP client, below the SDK's
//! retries, so each attempt counts; the simulator's `call`). A circuit:
//! - **opens** after [`HealthConfig::failures`] failures in a row (a connection refused or reset, a 5xx, a
//!   timeout) with no success between them, or when a call has had no answer for [`HealthConfig::brownout`] and
//!   nothing else answered from that region meanwhile (a brownout: connections accepted, never answered). The
//!   window runs from the oldest call left unanswered since the last success, so it is "per region", not per call
//!   or per step: a region that never answers is known unreachable within one window of the first call to it;
//! - while open, **refuses** every call at once, without sending it ([`CODE_UNREACHABLE`], kind
//!   [`ErrorKind::Unreachable`]), and calls already waiting on the region are abandoned with the same refusal;
//! - **closes** only on a successful probe: every [`HealthConfig::probe_every`] one call is let through (the
//!   backend's prober: STS `GetCallerIdentity` in the region on AWS) and a success closes the circuit.
//!
//! Each change is a [`Transition`]; engines subscribe and turn them into `region_unreachable` / `region_reachable`
//! events. Keys: a region name, or for a global service the service (`route53`, `iam`: their control planes are
//! served from us-east-1, and fail independently of us-east-1's regional endpoints).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::cloud::{CloudError, ErrorKind};
use crate::run::Clock;

/// `CloudError::code` of a call refused because its region's circuit is open (nothing was sent).
pub const CODE_UNREACHABLE: &str = "RegionUnreachable";

/// When a circuit opens, and how often it is probed.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// Failures in a row (connection errors, 5xx, timeouts) that open the circuit.
    pub failures: u32,
    /// No answer from a region for this long (and no other call answered) opens its circuit: a brownout.
    pub brownout: Duration,
    /// An open circuit lets one probe call through this often.
    pub probe_every: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self { failures: 5, brownout: Duration::from_secs(60), probe_every: Duration::from_secs(30) }
    }
}

impl HealthConfig {
    /// The defaults, overridden by `DRCONSOLE_REGION_FAILURES` (a count), `DRCONSOLE_REGION_BROWNOUT` and
    /// `DRCONSOLE_REGION_PROBE` (durations: `60s`, `2m`...). A value that does not parse is an error naming it.
    pub fn from_env() -> Result<Self, String> {
        let mut c = Self::default();
        if let Ok(v) = std::env::var("DRCONSOLE_REGION_FAILURES") {
            c.failures = v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("DRCONSOLE_REGION_FAILURES={v}: expected a count of 1 or more"))?;
        }
        let dur = |name: &str, v: String| {
            crate::util::parse_duration(v.trim())
                .map_err(|e| format!("{name}={v}: expected a duration such as 60s or 2m ({e})"))
                .and_then(|d| if d.is_zero() { Err(format!("{name}={v}: must be more than 0")) } else { Ok(d) })
        };
        if let Ok(v) = std::env::var("DRCONSOLE_REGION_BROWNOUT") {
            c.brownout = dur("DRCONSOLE_REGION_BROWNOUT", v)?;
        }
        if let Ok(v) = std::env::var("DRCONSOLE_REGION_PROBE") {
            c.probe_every = dur("DRCONSOLE_REGION_PROBE", v)?;
        }
        Ok(c)
    }
}

/// A circuit changed: opened (`unreachable`) or closed by a successful probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub region: String,
    pub unreachable: bool,
    /// Opened: what was seen (the failures, or the call left unanswered). Closed: the probe that answered.
    pub evidence: String,
    /// When the circuit opened (run time); for a close, when it had opened.
    pub since: Timestamp,
    /// When this change happened (run time).
    pub at: Timestamp,
}

/// An open circuit.
#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    pub since: Timestamp,
    pub evidence: String,
}

/// Calls the backend makes to probe a region (its result is seen by [`RegionHealth::guard`] like any call's).
pub type Prober = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

#[derive(Default)]
struct Circuit {
    /// Failures in a row since the last success, and the last one's description.
    failures: u32,
    last_failure: String,
    /// The calls (service and operation) that got a 5xx in the current run of failures, and whether any failure had
    /// no answer at all.
    error_calls: std::collections::BTreeSet<String>,
    unanswered_failures: bool,
    /// The oldest call left unanswered (or failed) since the last success: the brownout window runs from it.
    unanswered_since: Option<tokio::time::Instant>,
    last_success: Option<tokio::time::Instant>,
    open: Option<Open>,
    /// Told when the circuit opens, so calls waiting on the region give up.
    opened: Option<watch::Sender<bool>>,
}

/// The per-region circuits of one process (see the module doc).
pub struct RegionHealth {
    config: HealthConfig,
    clock: Clock,
    circuits: Mutex<BTreeMap<String, Circuit>>,
    transitions: broadcast::Sender<Transition>,
    history: Mutex<Vec<Transition>>,
    prober: Mutex<Option<Prober>>,
    me: Weak<RegionHealth>,
}

impl std::fmt::Debug for RegionHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionHealth").field("config", &self.config).finish_non_exhaustive()
    }
}

tokio::task_local! {
    /// Set while a probe runs: its call goes through an open circuit.
    static PROBING: ();
}

/// What a guarded call's result says about its region.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// The region answered (whatever the answer: a 4xx is an answer).
    Answered,
    /// No answer: a connection refused, reset or lost, a timeout. This description is the evidence.
    Failed(String),
    /// An answer, but a 5xx: counts toward opening once failures in a row span two different calls (one API failing
    /// on its own, a service bug or one operation's outage, does not make the region unreachable).
    ServerError(String),
    /// Says nothing about the region (refused before sending, a local error).
    Nothing,
}

impl RegionHealth {
    pub fn new(config: HealthConfig, clock: Clock) -> Arc<Self> {
        let (transitions, _) = broadcast::channel(256);
        Arc::new_cyclic(|me| Self {
            config,
            clock,
            circuits: Mutex::new(BTreeMap::new()),
            transitions,
            history: Mutex::new(Vec::new()),
            prober: Mutex::new(None),
            me: me.clone(),
        })
    }

    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// Sets what probes an open circuit (the backend's cheapest read in that region).
    pub fn set_prober(&self, prober: Prober) {
        *self.prober.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(prober);
    }

    fn circuits(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Circuit>> {
        self.circuits.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every change so far, in order.
    pub fn history(&self) -> Vec<Transition> {
        self.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The regions whose circuit is open now.
    pub fn open_regions(&self) -> Vec<(String, Open)> {
        self.circuits().iter().filter_map(|(r, c)| c.open.clone().map(|o| (r.clone(), o))).collect()
    }

    /// Changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Transition> {
        self.transitions.subscribe()
    }

    /// The open circuit of `region`, if it is open.
    pub fn is_open(&self, region: &str) -> Option<Open> {
        self.circuits().get(region).and_then(|c| c.open.clone())
    }

    /// The refusal of a call to an open region, naming the region, since when, why, and what the call needed.
    pub fn refusal(region: &str, open: &Open, service: &str, operation: &str) -> CloudError {
        let what = if region.contains('-') { format!("region {region}") } else { format!("{region}'s control plane") };
        CloudError::new(
            service,
            operation,
            region,
            CODE_UNREACHABLE,
            format!(
                "{what} is unreachable since {} ({}); {service} {operation} needs it and was not sent",
                open.since.strftime("%H:%M:%S UTC"),
                open.evidence
            ),
        )
        .with_kind(ErrorKind::Unreachable)
    }

    fn emit(&self, t: Transition) {
        self.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(t.clone());
        let _ = self.transitions.send(t);
    }

    /// Opens `region`'s circuit (if closed) with `evidence`.
    pub fn open(&self, region: &str, evidence: String) {
        let now = self.clock.now();
        let opened = {
            let mut cs = self.circuits();
            let c = cs.entry(region.to_string()).or_default();
            if c.open.is_some() {
                return;
            }
            c.open = Some(Open { since: now, evidence: evidence.clone() });
            c.opened.take()
        };
        if let Some(tx) = opened {
            let _ = tx.send(true);
        }
        self.emit(Transition { region: region.to_string(), unreachable: true, evidence, since: now, at: now });
        self.start_probing(region);
    }

    fn start_probing(&self, region: &str) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let (me, region) = (self.me.clone(), region.to_string());
        rt.spawn(async move {
            loop {
                let Some(h) = me.upgrade() else { return };
                let (clock, every) = (h.clock.clone(), h.config.probe_every);
                drop(h);
                clock.sleep(every).await;
                let Some(h) = me.upgrade() else { return };
                if h.is_open(&region).is_none() {
                    return;
                }
                let prober = h.prober.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                drop(h);
                match prober {
                    Some(p) => PROBING.scope((), p(region.clone())).await,
                    // nothing can probe: the circuit stays open for the process (fail closed)
                    None => return,
                }
            }
        });
    }

    /// Records what a call to `region` saw. A success closes an open circuit (only probes reach an open one).
    pub fn record(&self, region: &str, call: &str, seen: Seen, started: tokio::time::Instant) {
        enum Kind {
            ServerError,
            Other,
        }
        let seen_kind = if matches!(seen, Seen::ServerError(_)) { Kind::ServerError } else { Kind::Other };
        match seen {
            Seen::Nothing => {}
            Seen::Answered => {
                let closed = {
                    let mut cs = self.circuits();
                    let c = cs.entry(region.to_string()).or_default();
                    c.failures = 0;
                    c.error_calls.clear();
                    c.unanswered_failures = false;
                    c.last_success = Some(tokio::time::Instant::now());
                    // the region answers: no brownout window runs until a call goes unanswered again
                    c.unanswered_since = None;
                    c.open.take()
                };
                if let Some(o) = closed {
                    self.emit(Transition {
                        region: region.to_string(),
                        unreachable: false,
                        evidence: "a probe was answered".into(),
                        since: o.since,
                        at: self.clock.now(),
                    });
                }
            }
            Seen::Failed(what) | Seen::ServerError(what) => {
                let answered = matches!(seen_kind, Kind::ServerError);
                let open = {
                    let mut cs = self.circuits();
                    let c = cs.entry(region.to_string()).or_default();
                    if c.open.is_some() {
                        // a failed probe: stays open
                        return;
                    }
                    c.failures += 1;
                    c.last_failure = what;
                    if answered {
                        // the endpoint answered (with an error): no brownout window runs from this call
                        c.error_calls.insert(call.to_string());
                        c.unanswered_since = None;
                    } else {
                        c.unanswered_failures = true;
                        c.unanswered_since.get_or_insert(started);
                    }
                    (c.failures >= self.config.failures && (c.unanswered_failures || c.error_calls.len() >= 2))
                        .then(|| format!("{} failures in a row, the last: {}", c.failures, c.last_failure))
                };
                if let Some(evidence) = open {
                    self.open(region, evidence);
                }
            }
        }
    }

    /// Why a region is unreachable when its brownout window ran out: the failures seen meanwhile, if any, else the
    /// call left unanswered.
    fn window_evidence(&self, region: &str, what: &str) -> String {
        let secs = self.config.brownout.as_secs();
        match self.circuits().get(region) {
            Some(c) if c.failures > 0 => {
                format!("failing for {secs}s: {} failures in a row, the last: {}", c.failures, c.last_failure)
            }
            _ => format!("no answer to {what} for {secs}s, and no other call answered (a brownout)"),
        }
    }

    /// Runs one call to `region` under its circuit: refused at once when open (unless it is a probe); abandoned
    /// when the circuit opens while it waits; opens the circuit itself when it is left unanswered for the brownout
    /// window with nothing else answered from the region. `judge` tells what the call's result says of the region;
    /// `refused` turns a refusal into the call's error type. `what` names the call in the evidence.
    pub async fn guard<T, E, F>(
        &self,
        region: &str,
        what: &str,
        call: F,
        judge: impl Fn(&Result<T, E>) -> Seen,
        refused: impl Fn(&Open) -> E,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        if region.is_empty() {
            return call.await;
        }
        let probing = PROBING.try_with(|_| ()).is_ok();
        let started = tokio::time::Instant::now();
        let (deadline, mut opened) = {
            let mut cs = self.circuits();
            let c = cs.entry(region.to_string()).or_default();
            if let Some(o) = &c.open
                && !probing
            {
                return Err(refused(o));
            }
            let rx = match &c.opened {
                Some(tx) if !*tx.borrow() => tx.subscribe(),
                _ => {
                    let (tx, rx) = watch::channel(false);
                    c.opened = Some(tx);
                    rx
                }
            };
            // a probe has a window of its own; any other call, the one running from the oldest unanswered call
            let from = if probing { started } else { *c.unanswered_since.get_or_insert(started) };
            (from + self.clock.real(self.config.brownout), rx)
        };
        if !probing && deadline <= started {
            // the region has failed or not answered for a whole window already (failures in a row spaced by the
            // SDK's backoff): unreachable, and this call is not sent
            self.open(region, self.window_evidence(region, what));
            if let Some(o) = self.is_open(region) {
                return Err(refused(&o));
            }
        }
        tokio::pin!(call);
        let brownout = tokio::time::sleep_until(deadline);
        tokio::pin!(brownout);
        let mut watching = true;
        loop {
            tokio::select! {
                r = &mut call => {
                    self.record(region, what, judge(&r), started);
                    return r;
                }
                () = &mut brownout, if watching => {
                    let answered_since = self.circuits().get(region).and_then(|c| c.last_success).is_some_and(|t| t >= started);
                    if answered_since || probing {
                        // the region answers other calls: this one is slow, not a brownout (the SDK's timeouts
                        // bound it); a probe is bounded by the same window
                        if probing {
                            return Err(refused(&Open { since: self.clock.now(), evidence: format!("the probe {what} had no answer") }));
                        }
                        watching = false;
                        continue;
                    }
                    self.open(region, self.window_evidence(region, what));
                }
                changed = opened.changed(), if !probing => {
                    if changed.is_err() {
                        // the circuit's sender was replaced: keep waiting on the call alone
                        opened = watch::channel(false).1;
                        continue;
                    }
                }
            }
            if let Some(o) = self.is_open(region)
                && !probing
            {
                return Err(refused(&o));
            }
        }
    }
}

/// The circuit's key for a call: the region, or a global service's name (see the module doc).
pub fn key(service: &str, region: &str) -> String {
    match service {
        "route53" | "iam" | "cloudfront" | "organizations" => service.to_string(),
        _ => region.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(failures: u32, brownout: u64, probe: u64) -> Arc<RegionHealth> {
        let cfg =
            HealthConfig { failures, brownout: Duration::from_secs(brownout), probe_every: Duration::from_secs(probe) };
        RegionHealth::new(cfg, Clock::new(1.0))
    }

    fn judge(r: &Result<u16, CloudError>) -> Seen {
        match r {
            // 599 stands for no answer (a connection refused)
            Ok(599) => Seen::Failed("connection refused".into()),
            Ok(s) if *s >= 500 => Seen::ServerError(format!("HTTP {s}")),
            Ok(_) => Seen::Answered,
            Err(e) if e.kind == ErrorKind::Unreachable => Seen::Nothing,
            Err(e) => Seen::Failed(e.code.clone()),
        }
    }

    async fn call(h: &RegionHealth, region: &str, status: u16) -> Result<u16, CloudError> {
        call_as(h, region, "ec2 DescribeVolumes", status).await
    }

    async fn call_as(h: &RegionHealth, region: &str, what: &str, status: u16) -> Result<u16, CloudError> {
        h.guard(region, what, async { Ok(status) }, judge, |o| {
            RegionHealth::refusal(region, o, "ec2", "DescribeVolumes")
        })
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn failures_in_a_row_open_the_circuit_and_later_calls_are_refused_unsent() {
        let h = health(5, 60, 30);
        let mut rx = h.subscribe();
        assert_eq!(call(&h, "us-east-1", 599).await, Ok(599));
        assert_eq!(call(&h, "us-east-1", 200).await, Ok(200), "a success resets the count");
        // 5xx from one API alone (a service's bug, one operation's outage) is not the region
        for _ in 0..4 {
            assert_eq!(call(&h, "us-east-1", 500).await, Ok(500));
        }
        assert!(h.is_open("us-east-1").is_none() && rx.try_recv().is_err());
        // ...with another API failing too, it is
        assert_eq!(call_as(&h, "us-east-1", "rds DescribeDBSnapshots", 503).await, Ok(503));
        let t = rx.try_recv().expect("opened");
        assert!(t.unreachable && t.region == "us-east-1" && t.evidence.contains("5 failures"), "{t:?}");
        assert_eq!(call(&h, "us-east-1", 200).await.map_err(|e| e.kind), Err(ErrorKind::Unreachable));
        let h = health(3, 60, 30);
        let mut rx = h.subscribe();
        // no answer at all: any call counts
        for _ in 0..3 {
            assert_eq!(call(&h, "us-east-1", 599).await, Ok(599));
        }
        let t = rx.try_recv().expect("opened");
        assert!(t.evidence.contains("3 failures in a row, the last: connection refused"), "{t:?}");
        let sent = std::sync::atomic::AtomicU32::new(0);
        let r = h
            .guard(
                "us-east-1",
                "x",
                async {
                    sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(200u16)
                },
                judge,
                |o| RegionHealth::refusal("us-east-1", o, "ec2", "DescribeVolumes"),
            )
            .await;
        let e = r.expect_err("refused");
        assert_eq!(e.kind, ErrorKind::Unreachable);
        assert!(e.message.contains("us-east-1 is unreachable since") && e.message.contains("was not sent"), "{e}");
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing sent to an open region");
        assert_eq!(call(&h, "us-west-2", 200).await, Ok(200), "another region is not affected");
    }

    #[tokio::test(start_paused = true)]
    async fn a_brownout_opens_within_one_window_of_the_first_call_and_abandons_waiting_calls() {
        let h = health(3, 60, 3600);
        let start = tokio::time::Instant::now();
        let hang = |h: Arc<RegionHealth>| async move {
            h.guard(
                "us-east-1",
                "rds DescribeDBSnapshots",
                std::future::pending::<Result<u16, CloudError>>(),
                judge,
                |o| RegionHealth::refusal("us-east-1", o, "rds", "DescribeDBSnapshots"),
            )
            .await
        };
        let first = tokio::spawn(hang(h.clone()));
        tokio::time::sleep(Duration::from_secs(40)).await;
        // a second call, 40 s later: the window runs from the first, not from it
        let second = tokio::spawn(hang(h.clone()));
        let (a, b) = (first.await.expect("task"), second.await.expect("task"));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(60) && waited < Duration::from_secs(61), "{waited:?}");
        assert_eq!(a.expect_err("refused").kind, ErrorKind::Unreachable);
        assert_eq!(b.expect_err("refused").kind, ErrorKind::Unreachable);
        let t = &h.history()[0];
        assert!(t.evidence.contains("no answer to rds DescribeDBSnapshots for 60s"), "{t:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_region_failing_for_a_whole_window_is_unreachable_whatever_the_count() {
        let h = health(10, 5, 3600);
        for _ in 0..2 {
            assert_eq!(call(&h, "us-east-1", 599).await, Ok(599));
            // the SDK's backoff between attempts
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let e = call(&h, "us-east-1", 200).await.expect_err("refused, not sent");
        assert_eq!(e.kind, ErrorKind::Unreachable);
        let t = &h.history()[0];
        assert!(t.evidence.starts_with("failing for 5s: 2 failures in a row, the last: connection refused"), "{t:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_call_is_not_a_brownout_while_the_region_answers_others() {
        let h = health(3, 60, 30);
        let slow = {
            let h = h.clone();
            tokio::spawn(async move {
                h.guard(
                    "us-west-2",
                    "slow",
                    async {
                        tokio::time::sleep(Duration::from_secs(90)).await;
                        Ok::<u16, CloudError>(200)
                    },
                    judge,
                    |o| RegionHealth::refusal("us-west-2", o, "ec2", "X"),
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(call(&h, "us-west-2", 200).await, Ok(200));
        assert_eq!(slow.await.expect("task"), Ok(200));
        assert!(h.history().is_empty(), "{:?}", h.history());
    }

    #[tokio::test(start_paused = true)]
    async fn the_circuit_closes_only_on_a_successful_probe() {
        let h = health(1, 60, 30);
        let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (hh, upp) = (Arc::downgrade(&h), up.clone());
        h.set_prober(Arc::new(move |region: String| {
            let (hh, upp) = (hh.clone(), upp.clone());
            Box::pin(async move {
                if let Some(h) = hh.upgrade() {
                    let status = if upp.load(std::sync::atomic::Ordering::SeqCst) { 200 } else { 503 };
                    let _ = call(&h, &region, status).await;
                }
            })
        }));
        assert_eq!(call(&h, "us-east-1", 599).await, Ok(599));
        assert!(h.is_open("us-east-1").is_some());
        tokio::time::sleep(Duration::from_secs(65)).await;
        assert!(h.is_open("us-east-1").is_some(), "failed probes keep it open");
        up.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert!(h.is_open("us-east-1").is_none(), "a probe answered: closed");
        let hist = h.history();
        assert_eq!(hist.len(), 2, "{hist:?}");
        assert!(!hist[1].unreachable && hist[1].since == hist[0].since);
        assert_eq!(call(&h, "us-east-1", 200).await, Ok(200));
    }

    #[test]
    fn the_default_brownout_window_is_60_s() {
        let d = HealthConfig::default();
        assert_eq!((d.failures, d.brownout, d.probe_every), (5, Duration::from_secs(60), Duration::from_secs(30)));
    }

    #[test]
    fn global_services_have_their_own_circuit() {
        assert_eq!(key("route53", "us-east-1"), "route53");
        assert_eq!(key("ec2", "us-east-1"), "us-east-1");
    }
}

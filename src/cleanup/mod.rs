//! `drconsole cleanup RUN`: removes everything a run created.
//!
//! What to remove comes from two sources that confirm each other: the run journal's `resource` records (phase
//! `created`) and a sweep of the `drconsole:run-id` tag in both regions. Each candidate is described again before
//! it is deleted: a taggable resource is deleted only when it carries the run's tag; the kinds AWS cannot tag as
//! drconsole creates them (health checks, DNS records, launch template versions) only when the journal says this
//! run created them, and a DNS record only when it is the drill's record (a real failover's cut-over record is
//! production: never deleted). Deletes go in reverse dependency order ([`DELETE_ORDER`]), each waited for when AWS
//! needs it (ASG and its instances, NAT gateway before its Elastic IP, DB instance). A NAT gateway that route
//! tables still go through once the run's own routes are put back (the other applications of a shared VPC use the
//! claimant's gateway) is kept, with its Elastic IP, and said so ([`crate::cloud::cleanup::still_used`]).
//!
//! Every decision is appended to `cleanup.jsonl` in the run's directory (fsync per line). Deleting is idempotent
//! (a resource already gone is recorded as gone), so a cleanup killed anywhere is simply run again. It ends with a
//! sweep of what is still tagged with the run id, which must be nothing.

pub mod command;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::cloud::cleanup::{
    DELETE_ORDER, Found, KIND_ASG, KIND_DB, KIND_DNS_RECORD, KIND_EIP, KIND_LT_VERSION, KIND_NAT, KIND_ROUTE,
    RouteChange, UNTAGGED_KINDS,
};
use crate::cloud::{Cloud, CloudError, TAG_RUN_ID};
use crate::run::Clock;
use crate::run::RunView;

/// The cleanup's own journal, beside the run's.
pub const LOG_FILE: &str = "cleanup.jsonl";

/// Debug builds only: kill the process (SIGKILL) right after the delete of this kind is recorded (crash tests).
pub const KILL_AFTER_ENV: &str = "DRCONSOLE_TEST_KILL_AFTER_DELETE";

/// A resource as the cleanup records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Res {
    pub kind: String,
    pub id: String,
    pub region: String,
}

impl std::fmt::Display for Res {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = if self.region.is_empty() { "global" } else { &self.region };
        write!(f, "{} {} ({r})", self.kind, self.id)
    }
}

/// One line of `cleanup.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    /// A cleanup began: who, and whether `--force` cleaned a run that was not a drill.
    Started {
        by: String,
        drill: bool,
        forced: bool,
    },
    /// A non-drill run without `--force`: nothing was deleted.
    Refused {
        by: String,
        reason: String,
    },
    Deleting {
        res: Res,
    },
    Deleted {
        res: Res,
    },
    /// It was already gone (an earlier cleanup deleted it, or something else did).
    Gone {
        res: Res,
    },
    /// Not deleted, and why (it lacks the run's tag; the production record...).
    Kept {
        res: Res,
        reason: String,
    },
    Failed {
        res: Res,
        error: String,
    },
    /// A route the run set, put back as the run found it: `to` the previous target, or `deleted` (there was none).
    Restored {
        res: Res,
        to: String,
    },
    /// What the final sweep still found tagged with the run id (must be nothing), besides what was kept because
    /// it is in use (`in_use`: a shared NAT gateway other route tables go through, and its Elastic IP).
    Finished {
        left: Vec<Res>,
        clean: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        in_use: Vec<Res>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub ts: Timestamp,
    #[serde(flatten)]
    pub entry: Entry,
}

/// Appends to `cleanup.jsonl`, one synced line at a time.
pub struct Log {
    path: PathBuf,
    file: std::fs::File,
    clock: Clock,
    kill_after: Option<String>,
}

impl Log {
    pub fn open(run_dir: &Path, clock: Clock) -> Result<Self, String> {
        let path = run_dir.join(LOG_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let kill_after = if cfg!(debug_assertions) { std::env::var(KILL_AFTER_ENV).ok() } else { None };
        Ok(Self { path, file, clock, kill_after })
    }

    pub fn write(&mut self, entry: Entry) -> Result<(), String> {
        let kill = matches!(&entry, Entry::Deleted { res } if self.kill_after.as_deref() == Some(res.kind.as_str()));
        let line = Line { ts: self.clock.now(), entry };
        let mut text = serde_json::to_string(&line).map_err(|e| e.to_string())?;
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        if kill {
            kill_self();
        }
        Ok(())
    }
}

fn kill_self() {
    #[cfg(unix)]
    // SAFETY: a plain libc call with no pointers; the process ends here
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort();
}

/// The lines of a run's `cleanup.jsonl` (none when it was never cleaned up); a torn last line is left out.
pub fn read_log(run_dir: &Path) -> Vec<Line> {
    let Ok(text) = std::fs::read_to_string(run_dir.join(LOG_FILE)) else { return Vec::new() };
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// What the cleanups of a run did, across every session (for reports and the command's summary).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub sessions: usize,
    pub removed: Vec<Res>,
    pub kept: Vec<(Res, String)>,
    /// Routes put back as the run found them, and to what.
    pub restored: Vec<(Res, String)>,
    pub failed: Vec<(Res, String)>,
    /// The last finished session's sweep; `None` when no cleanup finished.
    pub left: Option<Vec<Res>>,
    /// Still tagged with the run id after the last finished session, kept on purpose: in use by others.
    pub in_use: Vec<Res>,
    pub refused: Option<String>,
    pub forced: bool,
    pub last: Option<Timestamp>,
}

impl Summary {
    pub fn from_lines(lines: &[Line]) -> Self {
        let mut s = Summary::default();
        let mut removed = BTreeSet::new();
        for l in lines {
            s.last = Some(l.ts);
            match &l.entry {
                Entry::Started { forced, .. } => {
                    s.sessions += 1;
                    s.forced |= forced;
                    s.left = None;
                    s.failed.clear();
                    s.kept.clear();
                    s.restored.clear();
                }
                Entry::Refused { reason, .. } => s.refused = Some(reason.clone()),
                Entry::Deleted { res } => {
                    removed.insert(res.clone());
                }
                Entry::Kept { res, reason } => s.kept.push((res.clone(), reason.clone())),
                Entry::Restored { res, to } => s.restored.push((res.clone(), to.clone())),
                Entry::Failed { res, error } => s.failed.push((res.clone(), error.clone())),
                Entry::Finished { left, in_use, .. } => {
                    s.left = Some(left.clone());
                    s.in_use.clone_from(in_use);
                }
                Entry::Deleting { .. } | Entry::Gone { .. } => {}
            }
        }
        s.removed = removed.into_iter().collect();
        s
    }

    /// A cleanup finished and left nothing tagged with the run id.
    pub fn clean(&self) -> bool {
        self.left.as_ref().is_some_and(Vec::is_empty) && self.failed.is_empty()
    }
}

/// A resource to consider, and whether the journal says the run created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub res: Res,
    pub journalled: bool,
}

/// What the run's view says it created (its footprint's `created` records), of the kinds a cleanup deletes.
pub fn created_by_run(view: &RunView) -> Vec<Res> {
    let mut out = BTreeSet::new();
    for r in &view.footprint.created {
        if DELETE_ORDER.contains(&r.kind.as_str()) {
            let region = if r.region == "global" { String::new() } else { r.region.clone() };
            out.insert(Res { kind: r.kind.clone(), id: r.id.clone(), region });
        }
    }
    out.into_iter().collect()
}

/// The routes the run's view says it changed (its footprint's `changed` records of kind `route`), each with the
/// target it found first and the one it set last.
pub fn routes_changed_by_run(view: &RunView) -> Vec<(Res, RouteChange)> {
    let mut out: Vec<(Res, RouteChange)> = Vec::new();
    for c in view.footprint.changed.iter().filter(|c| c.res.kind == KIND_ROUTE) {
        let res = Res { kind: c.res.kind.clone(), id: c.res.id.clone(), region: c.res.region.clone() };
        for ch in c.states.iter().filter_map(|state| RouteChange::parse(&c.res.id, state)) {
            match out.iter_mut().find(|(r, _)| *r == res) {
                // changed again (a retry, another NAT gateway): what was there before the run stays the first
                Some((_, first)) => first.set_to = ch.set_to,
                None => out.push((res.clone(), ch)),
            }
        }
    }
    out
}

/// Everything a cleanup works through.
#[derive(Debug, Clone)]
pub struct Plan {
    pub run_id: String,
    /// The run was a drill: its DNS record is `drill-<short id>.<record>`, or what `drill_record` makes.
    pub drill: bool,
    /// A drill's `drill_record` template (`{id}`, `{record}`), when its runbook had one.
    pub drill_record: Option<String>,
    pub regions: Vec<String>,
    pub journalled: Vec<Res>,
    /// The routes it changed ([`routes_changed_by_run`]): put back before the NAT gateways they point to go.
    pub routes: Vec<(Res, RouteChange)>,
}

/// Where a kind goes in the cleanup: [`DELETE_ORDER`], a route just before the NAT gateways.
fn order(kind: &str) -> usize {
    let pos = |k: &str| DELETE_ORDER.iter().position(|x| *x == k).unwrap_or(DELETE_ORDER.len());
    if kind == KIND_ROUTE { 2 * pos(KIND_NAT) } else { 2 * pos(kind) + 1 }
}

/// How long a delete is waited for before the cleanup moves on (and reports it left).
fn wait_limit(kind: &str) -> Duration {
    match kind {
        KIND_DB => Duration::from_secs(45 * 60),
        KIND_ASG => Duration::from_secs(20 * 60),
        KIND_NAT => Duration::from_secs(15 * 60),
        // DeleteLaunchTemplateVersions acts at once: a version still there after this was not deleted
        KIND_LT_VERSION => Duration::from_secs(30),
        _ => Duration::from_secs(5 * 60),
    }
}

const POLL: Duration = Duration::from_secs(15);

/// The wait before poll number `n` (from 0): 1 s, 2 s, 4 s, 8 s, then every [`POLL`]. Most deletes are quick to
/// confirm (a target group, a volume, a snapshot); the slow ones (NAT gateway, DB instance, ASG) soon poll every 15 s.
fn poll_delay(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(4)).min(POLL)
}

/// The tag sweep of both regions: what still carries the run id.
pub async fn sweep(cloud: &Cloud, plan: &Plan) -> Result<Vec<Found>, CloudError> {
    let mut all = Vec::new();
    for r in &plan.regions {
        all.extend(cloud.cleanup.tagged(r, TAG_RUN_ID, &plan.run_id).await?);
    }
    Ok(all)
}

/// Whether the cleanup may delete this resource, as described now: `Err(reason)` to keep it.
fn may_delete(plan: &Plan, c: &Candidate, now: &Found) -> Result<(), String> {
    if UNTAGGED_KINDS.contains(&c.res.kind.as_str()) {
        if !c.journalled {
            return Err("not created by this run according to its journal".into());
        }
        // a drill never makes its version the default: something else did since (a real failover found the same
        // image in it), and groups launch it now
        if c.res.kind == KIND_LT_VERSION && plan.drill && now.state == "default" {
            return Err(
                "the launch template's default version now (not made so by this drill): groups launch it".into()
            );
        }
        if c.res.kind == KIND_DNS_RECORD {
            let short = crate::drill::short_id(&plan.run_id);
            if !(plan.drill && crate::drill::is_drill_record(plan.drill_record.as_deref(), &c.res.id, &short)) {
                return Err("a production DNS record: cleanup never deletes one (it moved traffic)".into());
            }
        }
        return Ok(());
    }
    match now.tags.get(TAG_RUN_ID) {
        Some(v) if *v == plan.run_id => Ok(()),
        Some(v) => Err(format!("tagged {TAG_RUN_ID}={v}, another run's")),
        None => Err(format!("lacks the run's tag {TAG_RUN_ID}={}", plan.run_id)),
    }
}

/// Deletes what the run created; `after_each` runs after every recorded decision (the simulator saves its world
/// there). Returns the final sweep.
pub async fn run(
    cloud: &Cloud,
    plan: &Plan,
    clock: &Clock,
    log: &mut Log,
    after_each: &mut (dyn FnMut() + Send),
) -> Result<Vec<Res>, String> {
    // the journal's records, and the sweep that confirms them (and finds what a crash kept out of the journal)
    let mut cands: Vec<Candidate> = plan
        .journalled
        .iter()
        .chain(plan.routes.iter().map(|(r, _)| r))
        .map(|r| Candidate { res: r.clone(), journalled: true })
        .collect();
    let swept = sweep(cloud, plan).await.map_err(|e| format!("the tag sweep failed: {e}"))?;
    for f in swept {
        let res = Res { kind: f.kind, id: f.id, region: f.region };
        if !cands.iter().any(|c| c.res == res) {
            cands.push(Candidate { res, journalled: false });
        }
    }
    cands.sort_by(|a, b| (order(&a.res.kind), &a.res).cmp(&(order(&b.res.kind), &b.res)));
    let mut in_use = Vec::new();
    for c in &cands {
        remove_one(cloud, plan, clock, log, c, &mut in_use).await?;
        after_each();
    }
    let (in_use, left): (Vec<Res>, Vec<Res>) = sweep(cloud, plan)
        .await
        .map_err(|e| format!("the final tag sweep failed: {e}"))?
        .into_iter()
        .map(|f| Res { kind: f.kind, id: f.id, region: f.region })
        .partition(|r| in_use.contains(r));
    log.write(Entry::Finished { left: left.clone(), clean: left.is_empty(), in_use })?;
    after_each();
    Ok(left)
}

/// Puts a route the run set back as the run found it, unless it changed since (a real failover started during a
/// drill routes through its own NAT gateway: that stays), or — not in a drill, whose gateway no other run uses —
/// what lives behind it is not the run's (the other applications of a shared VPC route through the claimant's NAT
/// gateway: their route, and the gateway, stay).
async fn restore_route(
    cloud: &Cloud,
    plan: &Plan,
    clock: &Clock,
    log: &mut Log,
    res: &Res,
    ch: &RouteChange,
) -> Result<(), String> {
    let mut attempts = 0u32;
    let now = loop {
        match cloud.cleanup.route_target(&res.region, &ch.table, &ch.destination).await {
            Ok(x) => break x,
            Err(e) if e.is_retryable() && attempts < 5 => {
                clock.sleep(poll_delay(attempts)).await;
                attempts += 1;
            }
            Err(e) => return log.write(Entry::Failed { res: res.clone(), error: e.to_string() }),
        }
    };
    // already as it was (an earlier cleanup put it back)
    if now == ch.previous {
        return log.write(Entry::Gone { res: res.clone() });
    }
    if now.as_deref() != Some(ch.set_to.as_str()) {
        let reason = match now {
            Some(t) => {
                format!("now routes to {t}, not to {} as this run set it: changed since, left as it is", ch.set_to)
            }
            None => "deleted since this run set it".to_string(),
        };
        return log.write(Entry::Kept { res: res.clone(), reason });
    }
    if ch.previous.as_deref() == Some("?") {
        let reason = format!(
            "routed to a target drconsole does not record before this run set it to {}: put it back by hand",
            ch.set_to
        );
        return log.write(Entry::Kept { res: res.clone(), reason });
    }
    // a drill's NAT gateway is its own (no other run routes through it): its routes go back as the drill found
    // them, whatever lives behind them (they lived without it before)
    let others = if plan.drill {
        Ok(Vec::new())
    } else {
        crate::cloud::cleanup::others_behind(cloud, &res.region, &ch.table, &plan.run_id).await
    };
    match others {
        Ok(others) if others.is_empty() => {}
        Ok(others) => {
            let reason = format!(
                "in use: what lives in the subnets it serves is not this run's and goes out through {}: {}; left \
                 as it is (and {} with it)",
                ch.set_to,
                others.join(", "),
                ch.set_to
            );
            return log.write(Entry::Kept { res: res.clone(), reason });
        }
        Err(e) => {
            let error = format!("cannot tell whether others use this route, so it was left as it is: {e}");
            return log.write(Entry::Failed { res: res.clone(), error });
        }
    }
    log.write(Entry::Deleting { res: res.clone() })?;
    let mut attempts = 0u32;
    loop {
        match cloud.cleanup.restore_route(&res.region, &ch.table, &ch.destination, ch.previous.as_deref()).await {
            Ok(()) => break,
            Err(e) if e.is_retryable() && attempts < 5 => {
                clock.sleep(poll_delay(attempts)).await;
                attempts += 1;
            }
            Err(e) => return log.write(Entry::Failed { res: res.clone(), error: e.to_string() }),
        }
    }
    let to = ch.previous.clone().unwrap_or_else(|| "deleted".into());
    log.write(Entry::Restored { res: res.clone(), to })
}

/// Removes one candidate; one kept because others use it (a shared NAT gateway, its address) goes into `in_use`.
async fn remove_one(
    cloud: &Cloud,
    plan: &Plan,
    clock: &Clock,
    log: &mut Log,
    c: &Candidate,
    in_use: &mut Vec<Res>,
) -> Result<(), String> {
    let res = &c.res;
    if res.kind == KIND_ROUTE {
        return match plan.routes.iter().find(|(r, _)| r == res) {
            Some((_, ch)) => restore_route(cloud, plan, clock, log, res, ch).await,
            None => log.write(Entry::Kept { res: res.clone(), reason: "no record of what it was before".into() }),
        };
    }
    let mut attempts = 0u32;
    let now = loop {
        match cloud.cleanup.describe(&res.region, &res.kind, &res.id).await {
            Ok(x) => break x,
            Err(e) if e.is_retryable() && attempts < 5 => {
                clock.sleep(poll_delay(attempts)).await;
                attempts += 1;
            }
            Err(e) => return log.write(Entry::Failed { res: res.clone(), error: e.to_string() }),
        }
    };
    let Some(now) = now else { return log.write(Entry::Gone { res: res.clone() }) };
    if let Err(reason) = may_delete(plan, c, &now) {
        return log.write(Entry::Kept { res: res.clone(), reason });
    }
    // a NAT gateway other applications' routes go through (and its address) stays: fail closed when that cannot
    // be told
    if res.kind == KIND_NAT || res.kind == KIND_EIP {
        match crate::cloud::cleanup::still_used(cloud, &res.region, &res.kind, &res.id).await {
            Ok(None) => {}
            Ok(Some(reason)) => {
                in_use.push(res.clone());
                return log.write(Entry::Kept { res: res.clone(), reason });
            }
            Err(e) => {
                let error = format!("cannot tell whether anything still uses it, so it was not deleted: {e}");
                return log.write(Entry::Failed { res: res.clone(), error });
            }
        }
    }
    log.write(Entry::Deleting { res: res.clone() })?;
    // an Elastic IP is released once its NAT gateway is deleted: AWS says InUse until then
    let mut attempts = 0u32;
    loop {
        match cloud.cleanup.delete(&res.region, &res.kind, &res.id).await {
            Ok(()) => break,
            // an address waits for its NAT gateway (minutes); another retryable error gets a few tries
            Err(e) if (res.kind == KIND_EIP && attempts < 20) || (e.is_retryable() && attempts < 5) => {
                clock.sleep(poll_delay(attempts)).await;
                attempts += 1;
            }
            Err(e) => return log.write(Entry::Failed { res: res.clone(), error: e.to_string() }),
        }
    }
    // wait until it is gone
    let start = clock.now();
    let limit = wait_limit(&res.kind);
    let mut polls = 0u32;
    loop {
        // a describe that fails is tried again at the next poll
        if let Ok(None) = cloud.cleanup.describe(&res.region, &res.kind, &res.id).await {
            return log.write(Entry::Deleted { res: res.clone() });
        }
        let waited = crate::run::clock::secs_between(start, clock.now());
        if u64::try_from(waited).unwrap_or(0) > limit.as_secs() {
            return log.write(Entry::Failed {
                res: res.clone(),
                error: format!("still there after {}", crate::util::fmt_duration(limit)),
            });
        }
        clock.sleep(poll_delay(polls)).await;
        polls += 1;
    }
}

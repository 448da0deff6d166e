//! The checks: for each step, by its action, the preconditions the step will rely on, looked up the way the action
//! looks them up (the same helpers where the actions have them), through the read-only view only.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use super::{Finding, ReadOnlyCloud, Status, Unchecked};
use crate::actions::Registry;
use crate::actions::recovery_point::{self, CopyConvention, EbsFound, EbsOpts, EbsWanted};
use crate::cloud::{Cloud, Filter, Subnet};
use crate::run::Candidate;
use crate::runbook::Runbook;
use crate::util::fmt_duration;

mod more;

/// What the checks end with: findings, unchecked preconditions, identity, account, and the DR inventory (when the
/// primary answered).
pub(super) type Finished =
    (Vec<Finding>, Vec<Unchecked>, Option<String>, Option<String>, Option<crate::inventory::Inventory>);

pub(super) struct Checks<'a> {
    rb: &'a Runbook,
    registry: &'a Registry,
    ro: &'a ReadOnlyCloud,
    now: Timestamp,
    findings: Vec<Finding>,
    unchecked: Vec<Unchecked>,
    /// Checks done already (a VPC named by three steps is checked once).
    seen: BTreeSet<String>,
    identity: Option<String>,
    account: Option<String>,
    /// The current step, for findings.
    step: String,
    /// The DNS names the runbook moves (its route53.upsert records), which the listener's certificate must cover.
    records: Vec<String>,
    /// What the checks found that sizes the plan: the database recovery point (GiB, already in the secondary
    /// region) and the EBS set (the largest volume's GiB, whether its snapshot must be copied first).
    db_point: Option<(u64, bool)>,
    ebs_point: Option<(u64, bool)>,
    /// The DR inventory this preflight establishes, and whether the primary answered every call made for it (an
    /// inventory is written only then).
    pub(super) inventory: crate::inventory::Inventory,
    pub(super) primary_answered: bool,
    /// The runbook's past runs (`crate::forecast`): with enough of them, the projection is their P50/P90.
    pub(super) history: Vec<crate::forecast::RunRecord>,
}

/// A parameter's value when it is known before the run (not a `<steps.ID.OUTPUT>` placeholder, not empty).
fn known(p: &serde_json::Map<String, Value>, k: &str) -> Option<String> {
    match p.get(k) {
        Some(Value::String(s)) if !(s.is_empty() || s.contains('<') && s.contains('>')) => Some(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
        _ => None,
    }
}

/// A list parameter's values when all are known before the run.
fn known_list(p: &serde_json::Map<String, Value>, k: &str) -> Option<Vec<String>> {
    let v: Vec<String> = match p.get(k)? {
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect::<Option<Vec<_>>>()?,
        Value::String(s) => s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect(),
        _ => return None,
    };
    (!v.is_empty() && v.iter().all(|s| !(s.contains('<') && s.contains('>')))).then_some(v)
}

fn age(now: Timestamp, t: Timestamp) -> Duration {
    Duration::from_secs(u64::try_from(now.duration_since(t).as_secs()).unwrap_or(0))
}

/// A step's duration from the size the checks found, at the typical rates of AWS (the simulator's models): a
/// cross-region DB snapshot copy 5 min + 0.6 s/GiB, a restore 10 min + 1.2 s/GiB; an EBS snapshot copy 4 min +
/// 0.05 s/GiB, then the volume 1 min. `None` when nothing sizes the step.
fn sized_estimate(action: &str, db: Option<(u64, bool)>, ebs: Option<(u64, bool)>) -> Option<(Duration, String)> {
    let secs = |s: f64| Duration::from_secs(s.round() as u64);
    match (action, db, ebs) {
        ("rds.copy_snapshot", Some((_, true)), _) => Some((secs(30.0), "the snapshot is in the region already".into())),
        ("rds.copy_snapshot", Some((g, false)), _) => {
            Some((secs(300.0 + g as f64 * 0.6), format!("{g} GiB cross-region")))
        }
        ("rds.restore_snapshot", Some((g, _)), _) => Some((secs(600.0 + g as f64 * 1.2), format!("{g} GiB"))),
        ("ebs.restore_set", _, Some((g, copy))) => {
            let s = 60.0 + if copy { 240.0 + g as f64 * 0.05 } else { 0.0 };
            Some((secs(s), format!("largest volume {g} GiB{}", if copy { ", copied first" } else { "" })))
        }
        _ => None,
    }
}

fn stamp(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

impl<'a> Checks<'a> {
    pub(super) fn new(rb: &'a Runbook, registry: &'a Registry, ro: &'a ReadOnlyCloud, now: Timestamp) -> Self {
        Self {
            rb,
            registry,
            ro,
            now,
            findings: Vec::new(),
            unchecked: Vec::new(),
            seen: BTreeSet::new(),
            identity: None,
            account: None,
            step: "-".into(),
            records: Vec::new(),
            db_point: None,
            ebs_point: None,
            history: Vec::new(),
            inventory: crate::inventory::Inventory {
                version: crate::inventory::VERSION,
                taken: now,
                runbook: rb.meta.name.clone(),
                app: rb.meta.app.clone(),
                primary: rb.target.primary.clone(),
                secondary: rb.target.secondary.clone(),
                host: crate::inventory::host(),
                ..Default::default()
            },
            primary_answered: true,
        }
    }

    pub(super) fn finish(mut self) -> Finished {
        self.inventory.account = self.account.clone();
        let inv = self.primary_answered.then_some(self.inventory);
        (self.findings, self.unchecked, self.identity, self.account, inv)
    }

    fn cloud(&self) -> &Cloud {
        self.ro.cloud()
    }

    /// Records a finding unless the same check (`key`) was done for an earlier step.
    fn add(&mut self, key: &str, status: Status, check: String, found: String, todo: &str) {
        if !self.seen.insert(key.to_string()) {
            return;
        }
        let todo = if status == Status::Ok { String::new() } else { todo.to_string() };
        self.findings.push(Finding { status, step: self.step.clone(), check, found, todo });
    }

    fn not_checked(&mut self, key: &str, what: String, why: &str) {
        if !self.seen.insert(format!("unchecked:{key}")) {
            return;
        }
        self.unchecked.push(Unchecked { step: self.step.clone(), what, why: why.to_string() });
    }

    fn rpo(&self) -> Duration {
        self.rb.meta.rpo
    }

    /// The caller's identity against `target.account`; true when it is another account (nothing else is checked).
    pub(super) async fn account(&mut self) -> bool {
        let region = self.rb.target.secondary.clone();
        let want = self.rb.target.account.clone();
        match self.cloud().sts.get_caller_identity(&region).await {
            Ok(id) => {
                self.identity = Some(id.arn.clone());
                self.account = Some(id.account.clone());
                match want {
                    Some(w) if w != id.account => {
                        self.add(
                            "account",
                            Status::Fail,
                            format!("the credentials are for the runbook's account {w}"),
                            format!("they are for account {} ({})", id.account, id.arn),
                            "use credentials (a profile) for the runbook's account, or fix target.account",
                        );
                        true
                    }
                    Some(w) => {
                        self.add(
                            "account",
                            Status::Ok,
                            format!("the credentials are for the runbook's account {w}"),
                            id.arn,
                            "",
                        );
                        false
                    }
                    None => {
                        self.add(
                            "account",
                            Status::Warn,
                            "the runbook names its account (target.account)".into(),
                            format!("it does not; the credentials are for {} ({})", id.account, id.arn),
                            "set target.account so a run in the wrong account is refused",
                        );
                        false
                    }
                }
            }
            Err(e) => {
                self.add(
                    "account",
                    Status::Fail,
                    "who the credentials are (sts:GetCallerIdentity)".into(),
                    e.to_string(),
                    "check the credentials (profile, SSO session) and that the secondary region answers",
                );
                false
            }
        }
    }

    /// The projected duration (the plan's critical path) against the RTO.
    pub(super) fn rto(&mut self) {
        let rb = self.rb;
        let mut sized: Vec<String> = Vec::new();
        let mut durations = Vec::with_capacity(rb.steps.len());
        for (i, step) in rb.steps.iter().enumerate() {
            let d = rb.expected(self.registry, i);
            // a step's own `expected` is the runbook author's figure: kept; else sized by what the checks found
            let est = if step.expected.is_some() {
                None
            } else {
                sized_estimate(&step.action, self.db_point, self.ebs_point)
            };
            match est {
                Some((e, why)) => {
                    sized.push(format!("{} {} ({why})", step.id, fmt_duration(e)));
                    durations.push(e);
                }
                None => durations.push(d),
            }
        }
        // with history: each step's P50 and P90 from its past runs on this backend, scaled by the sizes found
        let mut sizes = std::collections::HashMap::new();
        for s in &rb.steps {
            let size = match s.action.as_str() {
                "rds.copy_snapshot" | "rds.restore_snapshot" => self.db_point.map(|p| p.0),
                "ebs.restore_set" => self.ebs_point.map(|p| p.0),
                _ => None,
            };
            if let Some(g) = size.filter(|g| *g > 0) {
                sizes.insert(s.id.clone(), g as f64);
            }
        }
        let forecast = crate::forecast::Forecast::build(rb, self.registry, self.ro.backend(), &self.history, &sizes);
        let mut band = None;
        if forecast.from_history() {
            let p = |i: usize, p90: bool| {
                forecast.learnt(&rb.steps[i].id).map_or(durations[i], |f| if p90 { f.band().1 } else { f.band().0 })
            };
            let p90 = rb.dag.critical_path(|i| p(i, true)).0;
            durations = (0..rb.steps.len()).map(|i| p(i, false)).collect();
            band = Some(p90);
        }
        let (cp, path) = rb.dag.critical_path(|i| durations[i]);
        let names: Vec<&str> = path.iter().map(|&i| rb.steps[i].id.as_str()).collect();
        self.step = "-".into();
        let target = rb.meta.rto;
        let (status, found) = if cp <= target {
            (
                Status::Ok,
                format!(
                    "{} projected ({} to spare), critical path {}",
                    fmt_duration(cp),
                    fmt_duration(target - cp),
                    names.join(" → ")
                ),
            )
        } else {
            (
                Status::Fail,
                format!(
                    "{} projected, {} over, critical path {}",
                    fmt_duration(cp),
                    fmt_duration(cp - target),
                    names.join(" → ")
                ),
            )
        };
        let found = if sized.is_empty() || band.is_some() {
            found
        } else {
            format!("{found}; sized by what the checks found: {}", sized.join(", "))
        };
        let (status, found) = match band {
            Some(p90) => {
                let late90 = p90 > target;
                let found = format!(
                    "{found}; P50 {} · P90 {}{} ({})",
                    fmt_duration(cp),
                    fmt_duration(p90),
                    if late90 { " — over the RTO at P90" } else { "" },
                    forecast.basis_text()
                );
                (if status == Status::Ok && late90 { Status::Warn } else { status }, found)
            }
            None => (status, format!("{found}; {}", forecast.basis_text())),
        };
        self.add(
            "rto",
            status,
            format!("projected duration against the RTO of {}", fmt_duration(target)),
            found,
            "shorten the critical path (parallel steps, smaller restores, a warm standby) or revise the RTO",
        );
    }

    pub(super) async fn steps(&mut self) {
        let rb = self.rb;
        for i in 0..rb.steps.len() {
            if rb.steps[i].action == "route53.upsert"
                && let Some(r) = known(&crate::runbook::interp::planned_with(rb, i), "record")
                && !self.records.contains(&r)
            {
                self.records.push(r);
            }
        }
        for i in rb.dag.order.clone() {
            let step = &rb.steps[i];
            self.step = step.id.clone();
            let p = crate::runbook::interp::planned_with(rb, i);
            let secondary = rb.target.secondary.clone();
            let region = known(&p, "region").unwrap_or_else(|| secondary.clone());
            let source_region = known(&p, "source_region").unwrap_or_else(|| rb.target.primary.clone());
            if let Some(secret) = known(&p, "master_secret") {
                self.secret(&region, &secret).await;
            }
            if let Some(key) = known(&p, "kms_key") {
                self.kms(&region, &key).await;
            }
            match step.action.as_str() {
                "recovery_point.select" => self.recovery_point(&p).await,
                "ebs.restore_set" => {
                    if let Some(tag) = known(&p, "tag") {
                        let (k, v) = crate::actions::kit::tag_pair(&tag);
                        let conv = convention(&p);
                        self.ebs_set(&EbsWanted::Tag(k, v), &source_region, &region, &conv).await;
                    }
                }
                "rds.restore_pitr" => {
                    if let Some(db) = known(&p, "source") {
                        // its `region` is the source's, default the primary
                        let home = known(&p, "region").unwrap_or_else(|| rb.target.primary.clone());
                        self.pitr(&home, &db).await;
                    }
                }
                "ec2.copy_image" => {
                    if let Some(image) = known(&p, "image") {
                        self.image(&image, &source_region, &region).await;
                        self.inventory_images(&image, &source_region, &region).await;
                    }
                }
                "nat.ensure" | "elb.ensure" | "asg.ensure" => {
                    if let Some(vpc) = known(&p, "vpc") {
                        let want_private = step.action != "elb.ensure";
                        let want_public = step.action != "asg.ensure";
                        self.vpc(&region, &vpc, want_public, want_private).await;
                    }
                    if step.action == "nat.ensure"
                        && let Some(vpc) = known(&p, "vpc")
                    {
                        self.elastic_ips(&region, &vpc).await;
                        self.nat_quota(&region, &vpc, known(&p, "per_az").as_deref() == Some("true")).await;
                    }
                    if step.action == "asg.ensure"
                        && let Some(lt) = known(&p, "launch_template")
                    {
                        self.launch_template(&region, &lt, known(&p, "image").is_none()).await;
                        if let Some(vpc) = known(&p, "vpc") {
                            self.launch_template_groups(&region, &lt, &vpc).await;
                        }
                        let max = known(&p, "max").and_then(|m| m.trim_matches('"').parse::<u32>().ok());
                        self.vcpu_quota(&region, &lt, max).await;
                    }
                    if step.action == "elb.ensure" {
                        if let Some(cert) = known(&p, "certificate_arn") {
                            self.certificate(&region, &cert).await;
                        }
                        if let Some(name) = known(&p, "name") {
                            self.alb_quota(&region, &name).await;
                        }
                    }
                }
                "ec2.launch_template_version" | "asg.rollout" => {
                    if let Some(lt) = known(&p, "launch_template") {
                        self.launch_template(&region, &lt, false).await;
                    }
                }
                "waf.associate" => {
                    if let Some(acl) = known(&p, "web_acl") {
                        self.web_acl(&region, &acl).await;
                    }
                }
                "route53.failover" => {
                    if let (Some(zone), Some(record)) = (known(&p, "zone"), known(&p, "record")) {
                        let rtype = known(&p, "type").unwrap_or_else(|| "A".into());
                        self.failover_records(&zone, &record, &rtype, known(&p, "secondary_dns")).await;
                    }
                }
                "route53.routing_control" => {
                    if let Some(endpoints) = known_list(&p, "cluster_endpoints") {
                        let on = known_list(&p, "on").unwrap_or_default();
                        let off = known_list(&p, "off").unwrap_or_default();
                        self.routing_controls(&endpoints, &on, &off).await;
                    }
                }
                "route53.upsert" | "check.record_points_to_alb" => {
                    if let (Some(zone), Some(record)) = (known(&p, "zone"), known(&p, "record")) {
                        self.record(&zone, &record).await;
                    }
                }
                "shell" => self.not_checked(
                    &format!("shell:{}", step.id),
                    "what the shell command needs".into(),
                    "preflight never runs commands",
                ),
                _ => {}
            }
            if let Some(action) = self.registry.get(&step.action) {
                for c in crate::cloud::control_plane::of(action.spec()) {
                    let on_primary = c.region == rb.target.primary;
                    self.add(
                        &format!("control-plane:{}:{}", step.id, c.service),
                        if on_primary { Status::Warn } else { Status::Ok },
                        format!("control-plane dependency of {} ({})", step.id, step.action),
                        crate::cloud::control_plane::describe(&c, &rb.target.primary),
                        "make a failover record pair (PRIMARY with a health check, SECONDARY) and health checks \
                         beforehand and cut over with route53.failover (data plane), or accept the dependency",
                    );
                }
            }
            let group_vpc = match known(&p, "subnet_group") {
                Some(g) => Some((format!("the VPC of DB subnet group {g}"), self.subnet_group(&region, &g).await)),
                None => None,
            };
            if let Some(groups) = known_list(&p, "security_groups") {
                let within = match (group_vpc, known(&p, "vpc")) {
                    (Some(v), _) => Some(v),
                    (None, Some(name)) => Some((format!("VPC {name}"), self.vpc_id(&region, &name).await)),
                    (None, None) => None,
                };
                self.security_groups(&region, &groups, within).await;
            }
        }
        self.step = "-".into();
        self.permissions().await;
    }

    // ------------------------------------------------------------------------------------------- recovery points

    async fn recovery_point(&mut self, p: &serde_json::Map<String, Value>) {
        let source = known(p, "source").unwrap_or_default();
        let params = crate::actions::Params(p.clone());
        let resource = known(p, "resource").unwrap_or_default();
        let (primary, secondary) = (self.rb.target.primary.clone(), self.rb.target.secondary.clone());
        match source.as_str() {
            "ebs" => {
                let home = known(p, "source_region").unwrap_or(primary.clone());
                let wanted = match (known(p, "resource"), known(p, "tag")) {
                    (Some(v), _) => EbsWanted::Volume(v),
                    (None, Some(t)) => {
                        let (k, v) = crate::actions::kit::tag_pair(&t);
                        EbsWanted::Tag(k, v)
                    }
                    _ => return,
                };
                let other = if home == secondary { primary.clone() } else { secondary.clone() };
                self.ebs_set(&wanted, &home, &other, &convention(p)).await;
            }
            "rds_pitr" => {
                let home = known(p, "source_region").unwrap_or(primary.clone());
                self.pitr(&home, &resource).await;
            }
            "rds" | "backup" | "s3" | "ami" => {
                let what = match source.as_str() {
                    "rds" => format!("RDS snapshots of {resource}"),
                    "backup" => format!("AWS Backup recovery points of {resource}"),
                    "s3" => format!(
                        "exports in s3://{}/{}",
                        known(p, "bucket").unwrap_or_default(),
                        known(p, "prefix").unwrap_or_default()
                    ),
                    _ => format!("AMIs {resource}"),
                };
                let cloud = self.cloud().clone();
                let here = recovery_point::candidates(&cloud, &params, &source, &secondary).await;
                let there = recovery_point::candidates(&cloud, &params, &source, &primary).await;
                if source == "rds" {
                    self.inventory_db(&resource, &here, &there).await;
                }
                if source == "rds"
                    && let Some(tag) = known(p, "ebs_tag")
                {
                    let (k, v) = crate::actions::kit::tag_pair(&tag);
                    self.ebs_set(&EbsWanted::Tag(k, v), &primary, &secondary, &convention(p)).await;
                }
                let newest = |v: &[Candidate]| v.iter().max_by_key(|c| c.time).cloned();
                if source == "ami" {
                    self.ami_points(&what, &here, &there);
                    return;
                }
                let rpo = self.rpo();
                // the secondary region alone: the primary may be the region that is gone
                let key = format!("rp:{source}:{resource}");
                match &here {
                    Ok(v) => {
                        let n = newest(v);
                        let (status, found) = match &n {
                            None => (Status::Fail, format!("none in {secondary}")),
                            Some(c) => {
                                let a = age(self.now, c.time);
                                let s = if a <= rpo { Status::Ok } else { Status::Fail };
                                (s, format!("newest {} taken {} ({} old)", c.id, stamp(c.time), fmt_duration(a)))
                            }
                        };
                        self.add(
                            &format!("{key}:secondary"),
                            status,
                            format!("{what}: newest in {secondary} alone against the RPO of {}", fmt_duration(rpo)),
                            found,
                            "the cross-region copies stopped or lag: check the copy job (AWS Backup copy rule, \
                             the copy Lambda) — with the primary gone this is the recovery point",
                        );
                    }
                    Err(e) => self.add(
                        &format!("{key}:secondary"),
                        Status::Fail,
                        format!("{what} in {secondary}"),
                        e.to_string(),
                        "the secondary region must answer for a failover: check credentials and endpoints",
                    ),
                }
                let all: Vec<Candidate> = here.iter().chain(there.iter()).flat_map(|v| v.iter().cloned()).collect();
                if source == "rds" {
                    // the point a run would take: the newest in the secondary region if it meets the RPO (no copy),
                    // else the newest anywhere
                    let local = here.as_ref().ok().and_then(|v| newest(v)).filter(|c| age(self.now, c.time) <= rpo);
                    let pick = local.or_else(|| newest(&all));
                    self.db_point = pick.and_then(|c| c.size_gib.map(|g| (g, c.region == secondary)));
                }
                let (status, found) = match (newest(&all), &there) {
                    (None, _) => (Status::Fail, "none in either region".to_string()),
                    (Some(c), t) => {
                        let a = age(self.now, c.time);
                        let mut s = if a <= rpo { Status::Ok } else { Status::Fail };
                        let mut found = format!(
                            "newest {} in {} taken {} ({} old)",
                            c.id,
                            c.region,
                            stamp(c.time),
                            fmt_duration(a)
                        );
                        if let Err(e) = t {
                            s = s.max(Status::Warn);
                            found.push_str(&format!("; {primary} did not answer: {e}"));
                        }
                        (s, found)
                    }
                };
                self.add(
                    &format!("{key}:overall"),
                    status,
                    format!("{what}: newest in either region against the RPO of {}", fmt_duration(rpo)),
                    found,
                    "the backups stopped: check the backup schedule and its last jobs",
                );
            }
            _ => {}
        }
    }

    fn ami_points(
        &mut self,
        what: &str,
        here: &Result<Vec<Candidate>, crate::actions::ActionError>,
        there: &Result<Vec<Candidate>, crate::actions::ActionError>,
    ) {
        let (p, s) = (self.rb.target.primary.clone(), self.rb.target.secondary.clone());
        let n_here = here.as_ref().map(|v| v.len()).unwrap_or(0);
        let n_there = there.as_ref().map(|v| v.len()).unwrap_or(0);
        let (status, found) = match (n_here, n_there) {
            (0, 0) => (Status::Fail, format!("none available in {s} or {p}")),
            (0, n) => (Status::Warn, format!("{n} in {p} only: the copy needs {p} to answer")),
            (n, _) => (Status::Ok, format!("{n} available in {s}")),
        };
        self.add(
            &format!("ami-points:{what}"),
            status,
            format!("{what} in {s}"),
            found,
            "copy the AMI to the secondary region after every build (runbooks/ami-copy.toml)",
        );
    }

    /// The EBS set: per volume, the newest recovery point (either region), against the RPO.
    async fn ebs_set(&mut self, wanted: &EbsWanted, source: &str, target: &str, conv: &CopyConvention) {
        let key = format!("ebs:{wanted:?}");
        let cloud = self.cloud().clone();
        let what = match wanted {
            EbsWanted::Tag(k, v) => format!("EBS volumes tagged {k}={v}"),
            EbsWanted::Volume(v) => format!("EBS volume {v}"),
        };
        let opts = EbsOpts { convention: conv.clone(), inventory: None };
        let found = match recovery_point::find_ebs(&cloud, wanted, source, target, "", &opts).await {
            Ok(f) => f,
            Err(e) => {
                self.primary_answered &= !e.is_retryable();
                self.add(
                    &key,
                    Status::Fail,
                    format!("{what}: recovery points"),
                    e.to_string(),
                    "check that the regions answer",
                );
                return;
            }
        };
        self.record_ebs(wanted, &found, conv);
        if found.volumes.is_empty() {
            self.add(
                &key,
                Status::Fail,
                format!("{what}: recovery points in {source} and {target}"),
                "no volume and no snapshot found".into(),
                "check the tag (or volume id) in the runbook's vars",
            );
            return;
        }
        let rpo = self.rpo();
        let newest_size = |vol: &str, region: Option<&str>| {
            found
                .points
                .iter()
                .filter(|p| p.volume == vol && region.is_none_or(|r| p.region == r))
                .max_by_key(|p| p.time)
                .map(|p| p.snapshot.size_gib)
        };
        for vol in &found.volumes {
            let (gib, copy) = match newest_size(vol, Some(target)) {
                Some(g) => (g, false),
                None => (newest_size(vol, None).unwrap_or(0), source != target),
            };
            let (g0, c0) = self.ebs_point.unwrap_or((0, false));
            self.ebs_point = Some((g0.max(gib), c0 || copy));
        }
        for vol in &found.volumes {
            let pts: Vec<_> = found.points.iter().filter(|p| p.volume == *vol).collect();
            let newest_target = pts.iter().filter(|p| p.region == target).max_by_key(|p| p.time);
            let newest = pts.iter().max_by_key(|p| p.time);
            let check = format!("{what}: {vol}, newest snapshot against the RPO of {}", fmt_duration(rpo));
            let (status, found_text) = match (newest, newest_target) {
                (None, _) => (Status::Fail, "no snapshot in either region".to_string()),
                (Some(n), t) => {
                    let a = age(self.now, n.time);
                    let mut s = if a <= rpo { Status::Ok } else { Status::Fail };
                    let ge = if n.bound() { "≥ " } else { "" };
                    let mut txt = format!(
                        "{} in {} taken {}{} ({ge}{} old)",
                        n.snapshot.id,
                        n.region,
                        if n.bound() { "before " } else { "" },
                        stamp(n.time),
                        fmt_duration(a)
                    );
                    if n.bound() && a <= rpo {
                        s = s.max(Status::Warn);
                        txt.push_str(": its source time is not recorded, the RPO verdict is unknown");
                    }
                    match t {
                        Some(t) if source != target => {
                            let ta = age(self.now, t.time);
                            if ta > rpo {
                                s = Status::Fail;
                            }
                            txt.push_str(&format!(
                                "; newest in {target}: {} ({} old)",
                                t.snapshot.id,
                                fmt_duration(ta)
                            ));
                        }
                        None if source != target => {
                            s = s.max(Status::Warn);
                            txt.push_str(&format!("; none in {target} yet: the restore copies it (needs {source})"));
                        }
                        _ => {}
                    }
                    (s, txt)
                }
            };
            self.add(
                &format!("{key}:{vol}"),
                status,
                check,
                found_text,
                "the snapshots (or their cross-region copies) stopped: check the backup job and the copy job",
            );
        }
        if let Some(u) = &found.unreachable {
            self.add(
                &format!("{key}:unreachable"),
                Status::Warn,
                format!("{what}: {source} answers"),
                format!("{u} did not answer: only {target}'s snapshots were seen"),
                "if the primary is healthy, check credentials and endpoints for it",
            );
        }
    }

    async fn pitr(&mut self, region: &str, db: &str) {
        let rpo = self.rpo();
        let key = format!("pitr:{region}:{db}");
        let check = format!("point-in-time window of {db} in {region} against the RPO of {}", fmt_duration(rpo));
        match self.cloud().rds.restore_window(region, db).await {
            Ok(w) => {
                let a = age(self.now, w.latest);
                let s = if a <= rpo { Status::Ok } else { Status::Fail };
                let found =
                    format!("{} .. {} (latest restorable {} ago)", stamp(w.earliest), stamp(w.latest), fmt_duration(a));
                self.add(
                    &key,
                    s,
                    check,
                    found,
                    "automated backups or log shipping stopped: check the instance's backup retention",
                );
            }
            Err(e) => self.add(
                &key,
                Status::Fail,
                check,
                e.to_string(),
                "check the instance id and that automated backups are on",
            ),
        }
    }

    // ------------------------------------------------------------------------------------------------ resources

    async fn secret(&mut self, region: &str, id: &str) {
        let key = format!("secret:{region}:{id}");
        let check = format!("secret {id} readable in {region}");
        // the value is read (the restore reads it there) and dropped: it is never shown or kept
        match self.cloud().secrets.get_secret_value(region, id).await {
            Ok(_) => self.add(&key, Status::Ok, check, "found".into(), ""),
            Err(e) => self.add(
                &key,
                Status::Fail,
                check,
                e.to_string(),
                "replicate the secret to the secondary region (Secrets Manager: replicate secret to other regions)",
            ),
        }
    }

    /// A NAT gateway the step would create needs an Elastic IP: one must be free under the account's limit,
    /// unless the VPC has an available NAT gateway already (the step reuses it).
    async fn elastic_ips(&mut self, region: &str, vpc: &str) {
        let key = format!("eip:{region}");
        let check = format!("an Elastic IP can be allocated in {region} (for the NAT gateway)");
        let todo = "release unused Elastic IPs or raise the quota (Service Quotas: EC2-VPC Elastic IPs)";
        let c = self.cloud().clone();
        let subnets: Vec<String> = match c.ec2.describe_vpcs(region, &Filter::tag("Name", vpc)).await {
            Ok(v) => match v.first() {
                Some(v) => match c.ec2.describe_subnets(region, &Filter::default()).await {
                    Ok(s) => s.into_iter().filter(|s| s.vpc_id == v.id).map(|s| s.id).collect(),
                    Err(_) => Vec::new(),
                },
                None => Vec::new(),
            },
            Err(_) => Vec::new(),
        };
        if let Ok(nats) = c.ec2.describe_nat_gateways(region, &Filter::default()).await
            && let Some(n) = nats.iter().find(|n| n.state == "available" && subnets.contains(&n.subnet_id))
        {
            self.add(&key, Status::Ok, check, format!("{} serves {vpc} already: no new address needed", n.id), "");
            return;
        }
        match (c.limits.elastic_ip_limit(region).await, c.ec2.describe_addresses(region, &Filter::default()).await) {
            (Ok(Some(limit)), Ok(used)) => {
                let n = u32::try_from(used.len()).unwrap_or(u32::MAX);
                let s = if n < limit { Status::Ok } else { Status::Fail };
                self.add(&key, s, check, format!("{n} of {limit} in use"), todo);
            }
            (Ok(None), _) => self.not_checked(&key, check, "EC2 does not say the account's Elastic IP limit"),
            (Err(e), _) | (_, Err(e)) => {
                self.add(&key, Status::Fail, check, e.to_string(), "check that the region answers")
            }
        }
    }

    async fn kms(&mut self, region: &str, key: &str) {
        let k = format!("kms:{region}:{key}");
        let check = format!("KMS key {key} enabled in {region}");
        let todo = "enable the key (or fix the `kms_key` var): copies and restores under it fail otherwise";
        match self.cloud().kms.describe_key(region, key).await {
            Ok(Some(m)) if m.state == "Enabled" => self.add(&k, Status::Ok, check, m.arn, ""),
            Ok(Some(m)) => self.add(&k, Status::Fail, check, format!("{} is {}", m.arn, m.state), todo),
            Ok(None) => self.add(&k, Status::Fail, check, "no such key or alias".into(), todo),
            Err(e) => self.add(&k, Status::Fail, check, e.to_string(), "check kms:DescribeKey access in the region"),
        }
    }

    async fn image(&mut self, image: &str, source: &str, target: &str) {
        let key = format!("image:{image}:{target}");
        let filter = if image.starts_with("ami-") { Filter::id(image) } else { Filter::name(image) };
        let here = self.cloud().ec2.describe_images(target, &filter).await;
        let there =
            if source == target { Ok(Vec::new()) } else { self.cloud().ec2.describe_images(source, &filter).await };
        let avail = |r: &Result<Vec<crate::cloud::Image>, crate::cloud::CloudError>| -> usize {
            r.as_ref().map(|v| v.iter().filter(|i| i.state == "available").count()).unwrap_or(0)
        };
        let (h, t) = (avail(&here), avail(&there));
        let check = format!("AMI {image} (or its copy) in {target}");
        let (status, found) = match (h, t, &here) {
            (_, _, Err(e)) => (Status::Fail, e.to_string()),
            (0, 0, _) => (Status::Fail, format!("no available AMI matching {image} in {target} or {source}")),
            (0, n, _) => {
                (Status::Warn, format!("{n} in {source} only: the step copies it, which needs {source} to answer"))
            }
            (n, _, _) => (Status::Ok, format!("{n} available in {target}")),
        };
        self.add(
            &key,
            status,
            check,
            found,
            "build the AMI and copy it to the secondary region (runbooks/ami-copy.toml)",
        );
    }

    async fn vpc(&mut self, region: &str, name: &str, want_public: bool, want_private: bool) {
        let key = format!("vpc:{region}:{name}");
        let vpcs = match self.cloud().ec2.describe_vpcs(region, &Filter::tag("Name", name)).await {
            Ok(v) => v,
            Err(e) => {
                self.add(
                    &key,
                    Status::Fail,
                    format!("VPC {name} in {region}"),
                    e.to_string(),
                    "check that the region answers",
                );
                return;
            }
        };
        let Some(vpc) = vpcs.into_iter().next() else {
            self.add(
                &key,
                Status::Fail,
                format!("VPC {name} in {region}"),
                format!("no VPC tagged Name={name}"),
                "create the DR VPC (or fix the `vpc` var)",
            );
            return;
        };
        self.add(&key, Status::Ok, format!("VPC {name} in {region}"), vpc.id.clone(), "");
        let subnets: Vec<Subnet> = match self.cloud().ec2.describe_subnets(region, &Filter::default()).await {
            Ok(v) => v.into_iter().filter(|s| s.vpc_id == vpc.id).collect(),
            Err(e) => {
                self.add(&format!("{key}:subnets"), Status::Fail, format!("subnets of {name}"), e.to_string(), "");
                return;
            }
        };
        let list = |v: &[&Subnet]| v.iter().map(|s| format!("{} ({})", s.id, s.az)).collect::<Vec<_>>().join(", ");
        let public: Vec<&Subnet> = subnets.iter().filter(|s| s.public).collect();
        let private: Vec<&Subnet> = subnets.iter().filter(|s| !s.public).collect();
        if want_public {
            let (s, f) =
                if public.is_empty() { (Status::Fail, "none".to_string()) } else { (Status::Ok, list(&public)) };
            self.add(
                &format!("{key}:public"),
                s,
                format!("public subnets of {name} (load balancer, NAT gateway)"),
                f,
                "add public subnets (mapping public IPs, routed to an internet gateway)",
            );
        }
        if want_private {
            let (s, f) =
                if private.is_empty() { (Status::Fail, "none".to_string()) } else { (Status::Ok, list(&private)) };
            self.add(
                &format!("{key}:private"),
                s,
                format!("private subnets of {name} (instances, NAT routes)"),
                f,
                "add private subnets with their own route tables",
            );
            if !private.is_empty() {
                match self.cloud().ec2.describe_route_tables(region, &Filter::default()).await {
                    Ok(tables) => {
                        let without: Vec<&&Subnet> = private
                            .iter()
                            .filter(|s| !tables.iter().any(|t| t.vpc_id == vpc.id && t.subnet_ids.contains(&s.id)))
                            .collect();
                        let (st, f) = if without.is_empty() {
                            (Status::Ok, format!("{} private subnet(s), each with its route table", private.len()))
                        } else {
                            let ids: Vec<&str> = without.iter().map(|s| s.id.as_str()).collect();
                            (Status::Fail, format!("no route table of their own: {}", ids.join(", ")))
                        };
                        self.add(
                            &format!("{key}:routes"),
                            st,
                            format!("route tables of {name}'s private subnets"),
                            f,
                            "associate each private subnet with a route table (the NAT route goes there, never in the main table)",
                        );
                    }
                    Err(e) => self.add(
                        &format!("{key}:routes"),
                        Status::Fail,
                        format!("route tables of {name}"),
                        e.to_string(),
                        "",
                    ),
                }
            }
        }
    }

    async fn launch_template(&mut self, region: &str, name: &str, check_image: bool) {
        let key = format!("lt:{region}:{name}");
        let check = format!("launch template {name} in {region}");
        match self.cloud().ec2.describe_launch_template(region, name).await {
            Ok(Some(lt)) => {
                let found = format!("{} (default version {}, AMI {})", lt.id, lt.default_version, lt.image_id);
                self.add(&key, Status::Ok, check, found, "");
                if check_image && !lt.image_id.is_empty() {
                    let img = self.cloud().ec2.describe_images(region, &Filter::id(lt.image_id.clone())).await;
                    let (s, f) = match img {
                        Ok(v) if v.iter().any(|i| i.state == "available") => (Status::Ok, "available".to_string()),
                        Ok(_) => (Status::Fail, "not found (deregistered?)".to_string()),
                        Err(e) => (Status::Fail, e.to_string()),
                    };
                    self.add(
                        &format!("{key}:image"),
                        s,
                        format!("AMI {} of launch template {name} in {region}", lt.image_id),
                        f,
                        "point the launch template's default version at an AMI that exists in the region",
                    );
                }
            }
            Ok(None) => self.add(
                &key,
                Status::Fail,
                check,
                "not found".into(),
                "create the launch template in the secondary region (or fix the `launch_template` var)",
            ),
            Err(e) => self.add(&key, Status::Fail, check, e.to_string(), "check that the region answers"),
        }
    }

    async fn web_acl(&mut self, region: &str, name: &str) {
        let key = format!("waf:{region}:{name}");
        let check = format!("WAF web ACL {name} (REGIONAL) in {region}");
        match self.cloud().waf.get_web_acl(region, name).await {
            Ok(Some(a)) => self.add(&key, Status::Ok, check, a.arn, ""),
            Ok(None) => self.add(
                &key,
                Status::Fail,
                check,
                "not found".into(),
                "create the web ACL in the secondary region (same rules as the primary's)",
            ),
            Err(e) => self.add(&key, Status::Fail, check, e.to_string(), "check that the region answers"),
        }
    }

    async fn record(&mut self, zone: &str, record: &str) {
        let zkey = format!("zone:{zone}");
        let zones = match self.cloud().route53.find_hosted_zones(zone).await {
            Ok(z) => z,
            Err(e) => {
                self.add(&zkey, Status::Fail, format!("hosted zone {zone}"), e.to_string(), "check Route 53 access");
                return;
            }
        };
        let Some(z) = zones.iter().find(|z| !z.private).or(zones.first()).cloned() else {
            self.add(&zkey, Status::Fail, format!("hosted zone {zone}"), "not found".into(), "fix the `zone` var");
            return;
        };
        self.add(&zkey, Status::Ok, format!("hosted zone {zone}"), z.id.clone(), "");
        let fq = crate::actions::kit::fqdn(record);
        let check = format!("record {fq} in {zone}");
        match self.cloud().route53.list_record_sets(&z.id, &fq).await {
            Ok(v) => {
                let types: Vec<String> = v.iter().filter(|r| r.name == fq).map(|r| r.rtype.clone()).collect();
                let (s, f) = if types.is_empty() {
                    (Status::Fail, "no such record: the cut-over would create a name nobody uses".to_string())
                } else {
                    (Status::Ok, format!("found ({})", types.join(", ")))
                };
                self.add(&format!("record:{fq}"), s, check, f, "check the `record` var against the name customers use");
            }
            Err(e) => self.add(&format!("record:{fq}"), Status::Fail, check, e.to_string(), "check Route 53 access"),
        }
    }

    /// The failover record pair `route53.failover` relies on: a PRIMARY with a health check and a SECONDARY (its
    /// health check, if any, healthy), the SECONDARY pointing where the runbook says when that is known.
    async fn failover_records(&mut self, zone: &str, record: &str, rtype: &str, secondary_dns: Option<String>) {
        let fq = crate::actions::kit::fqdn(record);
        let key = format!("failover:{fq}:{rtype}");
        let check = format!("failover record pair {fq} {rtype} in {zone}");
        let todo = "create a PRIMARY failover record with a health check on the primary's endpoint and a \
                    SECONDARY record pointing to the secondary region, while Route 53's control plane answers";
        let zones = match self.cloud().route53.find_hosted_zones(zone).await {
            Ok(z) => z,
            Err(e) => return self.add(&key, Status::Fail, check, e.to_string(), "check Route 53 access"),
        };
        let Some(z) = zones.iter().find(|z| !z.private).or(zones.first()).cloned() else {
            return self.add(&key, Status::Fail, check, format!("no hosted zone {zone}"), "fix the `zone` var");
        };
        let records = match self.cloud().route53.list_record_sets(&z.id, &fq).await {
            Ok(v) => v,
            Err(e) => return self.add(&key, Status::Fail, check, e.to_string(), "check Route 53 access"),
        };
        let (primary, secondary) = crate::actions::route53_failover_pair(&records, &fq, rtype);
        let missing = [("PRIMARY", primary.is_none()), ("SECONDARY", secondary.is_none())];
        let (Some(primary), Some(secondary)) = (primary, secondary) else {
            let found = format!(
                "missing: {}",
                missing.iter().filter(|(_, m)| *m).map(|(n, _)| *n).collect::<Vec<_>>().join(" and ")
            );
            return self.add(&key, Status::Fail, check, found, todo);
        };
        let target = crate::actions::route53_target_of(&secondary);
        if let Some(want) = secondary_dns.map(|w| w.trim_end_matches('.').to_ascii_lowercase())
            && want != target
        {
            return self.add(
                &key,
                Status::Fail,
                check,
                format!("the SECONDARY points to {target}, not to {want}"),
                "point the SECONDARY record at the secondary region's endpoint",
            );
        }
        let Some(hc) = primary.health_check_id.clone() else {
            return self.add(&key, Status::Fail, check, "the PRIMARY has no health check".into(), todo);
        };
        let mut states = Vec::new();
        for (which, id) in [("PRIMARY", Some(hc)), ("SECONDARY", secondary.health_check_id.clone())] {
            let Some(id) = id else { continue };
            match self.cloud().route53.health_check_status(&id).await {
                Ok(st) => states.push((which, id, st)),
                Err(e) => return self.add(&key, Status::Fail, check, format!("health check {id}: {e}"), todo),
            }
        }
        if let Some((_, id, st)) = states.iter().find(|(w, _, st)| *w == "SECONDARY" && st != "Healthy") {
            return self.add(
                &key,
                Status::Fail,
                check,
                format!("the SECONDARY's health check {id} is {st}: Route 53 would not fail over to it"),
                "make the secondary's endpoint healthy (or its health check right)",
            );
        }
        let shown: Vec<String> = states.iter().map(|(w, id, st)| format!("{w} health check {id} {st}")).collect();
        self.add(&key, Status::Ok, check, format!("ready: SECONDARY → {target}; {}", shown.join(", ")), "");
    }
}

impl Checks<'_> {
    /// The routing controls `route53.routing_control` sets: each exists, read at the first cluster endpoint that
    /// answers (as the step will), with its state now and the state the step sets; endpoints that did not answer
    /// are a warning (the step would move on to the next one).
    async fn routing_controls(&mut self, endpoints: &[String], on: &[String], off: &[String]) {
        let key = format!("routing-controls:{}", self.step);
        let check = "Route 53 ARC routing controls".to_string();
        let endpoints = match crate::actions::route53_cluster_endpoints(endpoints) {
            Ok(e) => e,
            Err(e) => return self.add(&key, Status::Fail, check, e, "fix `cluster_endpoints`"),
        };
        let wanted: Vec<(String, &str)> =
            on.iter().map(|a| (a.clone(), "On")).chain(off.iter().map(|a| (a.clone(), "Off"))).collect();
        let arns: Vec<String> = wanted.iter().map(|(a, _)| a.clone()).collect();
        let cloud = self.cloud().clone();
        let mut missed = Vec::new();
        let read = crate::actions::route53_on_cluster(
            &cloud,
            &endpoints,
            0,
            |_, why| missed.push(why.to_string()),
            |ep| {
                let (cloud, arns) = (&cloud, &arns);
                async move {
                    let mut out = Vec::new();
                    for arn in arns {
                        out.push(cloud.routing_controls.routing_control_state(&ep, arn).await?);
                    }
                    Ok(out)
                }
            },
        )
        .await;
        if !missed.is_empty() {
            self.add(
                &format!("arc-endpoints:{}", self.step),
                Status::Warn,
                "Route 53 ARC cluster endpoints".into(),
                format!("did not answer: {}", missed.join("; ")),
                "the step tries the cluster's other endpoints; check the endpoints listed in `cluster_endpoints`",
            );
        }
        match read {
            Ok((i, controls)) => {
                let shown: Vec<String> = wanted
                    .iter()
                    .map(|(arn, want)| match controls.iter().find(|c| &c.arn == arn) {
                        Some(c) => format!(
                            "{} {} (the step sets {want})",
                            if c.name.is_empty() { arn } else { &c.name },
                            c.state
                        ),
                        None => format!("{arn} not read"),
                    })
                    .collect();
                self.add(
                    &key,
                    Status::Ok,
                    check,
                    format!("ready: {} (read at the cluster endpoint in {})", shown.join(", "), endpoints[i].region),
                    "",
                );
            }
            Err(f) => self.add(
                &key,
                Status::Fail,
                check,
                f.message("reading the routing controls"),
                "check the routing control ARNs, the cluster endpoints and the permission \
                 route53-recovery-cluster:GetRoutingControlState",
            ),
        }
    }
}

/// The copy convention a step declares (`copy_source_tag`, `copy_time_tag`, `copy_description`).
fn convention(p: &serde_json::Map<String, Value>) -> CopyConvention {
    CopyConvention {
        source_tag: known(p, "copy_source_tag"),
        time_tag: known(p, "copy_time_tag"),
        description: known(p, "copy_description"),
    }
}

impl Checks<'_> {
    /// Records the EBS set in the inventory (the primary's volumes, every attributed point), proposes the copy
    /// convention seen, and warns about copies nothing attributes.
    fn record_ebs(&mut self, wanted: &EbsWanted, found: &EbsFound, conv: &CopyConvention) {
        use crate::inventory::{Point, Volume, VolumeSet};
        if found.unreachable.is_some() {
            self.primary_answered = false;
        }
        let what = wanted.describe();
        if let EbsWanted::Tag(k, v) = wanted
            && found.unreachable.is_none()
        {
            let tag = format!("{k}={v}");
            if self.inventory.volume_set(&tag).is_none() {
                let volumes = found
                    .volume_info
                    .iter()
                    .map(|x| Volume {
                        id: x.id.clone(),
                        size_gib: x.size_gib,
                        az: x.az.clone(),
                        volume_type: x.volume_type.clone(),
                        device: x.attachments.first().map(|a| a.device.clone()),
                        instance: x.attachments.first().map(|a| a.instance_id.clone()),
                        tags: x.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    })
                    .collect();
                self.inventory.volume_sets.push(VolumeSet { tag, volumes });
            }
        }
        for p in &found.points {
            if self.inventory.point(&p.snapshot.id).is_some() {
                continue;
            }
            self.inventory.points.push(Point {
                id: p.snapshot.id.clone(),
                kind: "ebs-snapshot".into(),
                region: p.region.clone(),
                volume: Some(p.volume.clone()),
                instance: None,
                source_snapshot: p.copied_from.as_ref().map(|(_, s)| s.clone()),
                time: p.time,
                time_is_bound: p.bound(),
                by: p.by.clone(),
            });
        }
        if !found.proposals.is_empty() && !conv.is_declared() {
            let text = found.proposals.join("; ");
            self.inventory.notes.push(text.clone());
            self.add(
                &format!("convention:{what}"),
                Status::Warn,
                format!("{what}: how the copies in {} name their source", found.target),
                text,
                "declare the convention (the lines above) so copies can be attributed with the primary gone; the DR \
                 inventory written now attributes today's copies",
            );
        }
        if !found.unattributed.is_empty() {
            let list: Vec<String> = found
                .unattributed
                .iter()
                .map(|s| crate::actions::recovery_point::describe_unattributed(s, &found.target))
                .collect();
            self.inventory.notes.push(format!("unattributed copies: {}", list.join("; ")));
            self.add(
                &format!("unattributed:{what}"),
                Status::Warn,
                format!("{what}: copies in {} attributed to a volume", found.target),
                format!(
                    "{} cop{} cannot be attributed: {}",
                    list.len(),
                    if list.len() == 1 { "y" } else { "ies" },
                    list.join("; ")
                ),
                "with the primary gone a run stops before creating anything: declare the copies' convention \
                 (copy_source_tag, copy_time_tag, copy_description) or tag them with their source",
            );
        }
    }

    /// Records the database instance and its snapshots in the inventory.
    async fn inventory_db(
        &mut self,
        db: &str,
        here: &Result<Vec<Candidate>, crate::actions::ActionError>,
        there: &Result<Vec<Candidate>, crate::actions::ActionError>,
    ) {
        use crate::inventory::{Database, Point};
        let primary = self.rb.target.primary.clone();
        match self.cloud().rds.describe_db_instance(&primary, db).await {
            Ok(Some(d)) => {
                if !self.inventory.databases.iter().any(|x| x.id == d.id) {
                    self.inventory.databases.push(Database {
                        id: d.id,
                        engine: d.engine,
                        class: d.class,
                        subnet_group: d.subnet_group,
                        security_groups: d.security_groups,
                        storage_gib: d.storage_gib,
                    });
                }
            }
            Ok(None) => {}
            Err(e) => self.primary_answered &= !e.is_retryable(),
        }
        if there.is_err() {
            self.primary_answered = false;
        }
        for c in here.iter().chain(there.iter()).flatten() {
            if self.inventory.point(&c.id).is_some() {
                continue;
            }
            self.inventory.points.push(Point {
                id: c.id.clone(),
                kind: c.kind.clone(),
                region: c.region.clone(),
                instance: Some(db.to_string()),
                time: c.time,
                by: c.source.clone(),
                ..Point::default()
            });
        }
    }

    /// Records the images the runbook copies (both regions) in the inventory.
    async fn inventory_images(&mut self, image: &str, source: &str, target: &str) {
        let filter = if image.starts_with("ami-") { Filter::id(image) } else { Filter::name(image) };
        for region in [source, target] {
            match self.cloud().ec2.describe_images(region, &filter).await {
                Ok(v) => {
                    for i in v {
                        if !self.inventory.images.iter().any(|x| x.id == i.id) {
                            self.inventory.images.push(crate::inventory::Image {
                                id: i.id,
                                name: i.name,
                                region: region.to_string(),
                                created: i.created,
                            });
                        }
                    }
                }
                Err(e) if region == source && e.is_retryable() => self.primary_answered = false,
                Err(_) => {}
            }
        }
    }
}

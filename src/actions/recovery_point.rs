//! `recovery_point.select`: lists the recovery points of a resource across sources and regions and picks one.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde_json::Value;

use super::kit::{c, outs, s};
use super::spec::{ActionSpec, Effect, ParamKind as K, ParamSpec as P, out};
use super::{Action, ActionCtx, ActionError, Outputs, Params};
use crate::cloud::{Cloud, CloudResult, DbSnapshotQuery, Filter};
use crate::run::{Candidate, EventKind};

/// An answer (or `--recovery-point`) of `accept-rpo-loss:ID` chooses `ID` and records that the operator accepted
/// its data loss: a point older than the RPO is then taken even with `require_rpo = true`.
pub const ACCEPT_RPO_LOSS: &str = "accept-rpo-loss:";

/// The id of an answer, and whether it accepts the RPO loss.
fn accepted(answer: &str) -> (&str, bool) {
    match answer.strip_prefix(ACCEPT_RPO_LOSS) {
        Some(id) => (id, true),
        None => (answer, false),
    }
}

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(Select)]
}

/// The sources `recovery_point.select` lists.
pub const SOURCES: &[&str] = &["rds", "rds_pitr", "backup", "ebs", "ami", "s3"];
/// How it chooses.
pub const POLICIES: &[&str] = &["latest", "latest_before", "id", "ask"];

struct Select;
static SELECT: ActionSpec = ActionSpec {
    name: "recovery_point.select",
    summary: "List the recovery points of a resource (snapshots, PITR window, AWS Backup, EBS, AMIs, S3 exports) \
              across regions and pick one: latest, latest before a time, an explicit id, or ask the operator",
    params: &[
        P::req("source", K::OneOf(SOURCES), "rds | rds_pitr | backup | ebs | ami | s3"),
        P::opt(
            "resource",
            K::Str,
            "DB instance id (rds, rds_pitr, backup), volume id (ebs), AMI name or prefix* (ami)",
        ),
        P::opt("tag", K::Str, "ebs: snapshots with this tag, key=value"),
        P::opt("vault", K::Str, "backup: list this backup vault"),
        P::opt("bucket", K::Str, "s3: the bucket (the same name in each region listed)"),
        P::opt("prefix", K::Str, "s3: the key prefix of the time-stamped exports"),
        P::opt("engine", K::Str, "rds/backup: only this engine (postgres, mysql)"),
        P::opt("regions", K::StrList, "regions to search (default: primary and secondary)"),
        P::opt("prefer_region", K::Region, "on equal times, prefer this region (default: the secondary)"),
        P::opt(
            "policy",
            K::OneOf(POLICIES),
            "latest | latest_before | id | ask (default ask; headless: --recovery-point)",
        ),
        P::opt("before", K::Time, "latest_before: the newest point at or before this time"),
        P::opt("id", K::Str, "policy id: the recovery point id or ARN"),
        P::opt("require_rpo", K::Bool, "fail when the chosen point does not meet the runbook's RPO (default false)"),
    ],
    outputs: &[
        out("id", "the recovery point id (snapshot id, AMI id, S3 key prefix, `pitr:<time>`)"),
        out("arn", "its ARN"),
        out("time", "when it was taken (RFC 3339)"),
        out("kind", "rds-snapshot, rds-pitr, backup, ebs-snapshot, ami, s3-export"),
        out("region", "the region it is in"),
        out("resource", "the resource it restores"),
        out("age_secs", "its age at the incident start (the data loss)"),
        out("rpo_met", "whether it meets the RPO"),
    ],
    iam: &[
        "rds:DescribeDBSnapshots",
        "rds:DescribeDBInstances",
        "backup:ListRecoveryPointsByResource",
        "backup:ListRecoveryPointsByBackupVault",
        "ec2:DescribeSnapshots",
        "ec2:DescribeImages",
        "s3:ListBucket",
    ],
    expected_secs: 30,
    effect: Effect::ReadOnly,
};

struct Found {
    c: Candidate,
    resource: String,
}

async fn list_region(cloud: &Cloud, p: &Params, source: &str, region: &str) -> CloudResult<Vec<Found>> {
    let resource = p.opt_str("resource").ok().flatten().unwrap_or_default().to_string();
    let engine = p.opt_str("engine").ok().flatten().map(str::to_string);
    let mut out = Vec::new();
    let mk =
        |id: String, kind: &str, time: Timestamp, enc: bool, size: Option<u64>, arn: Option<String>, src: String| {
            Candidate {
                id,
                kind: kind.into(),
                region: region.into(),
                time,
                age_secs: 0,
                encrypted: enc,
                size_gib: size,
                rpo_met: false,
                arn,
                source: src,
            }
        };
    match source {
        "rds" => {
            let q = DbSnapshotQuery { instance_id: Some(resource.clone()), snapshot_id: None, include_automated: true };
            for sn in cloud.rds.describe_db_snapshots(region, &q).await? {
                if sn.status != "available" || engine.as_ref().is_some_and(|e| !sn.engine.contains(e.as_str())) {
                    continue;
                }
                let src = format!("RDS {} snapshot of {}", sn.snapshot_type, sn.instance_id);
                let c = mk(sn.id, "rds-snapshot", sn.created, sn.encrypted, Some(sn.storage_gib), Some(sn.arn), src);
                out.push(Found { c, resource: resource.clone() });
            }
        }
        "rds_pitr" => {
            let w = match cloud.rds.restore_window(region, &resource).await {
                Ok(w) => w,
                Err(e) if e.not_found => return Ok(out),
                Err(e) => return Err(e),
            };
            let src = format!("point-in-time window of {resource}: {} .. {}", w.earliest, w.latest);
            let c = mk("pitr:latest".into(), "rds-pitr", w.latest, true, None, None, src.clone());
            out.push(Found { c, resource: resource.clone() });
            if let Ok(Some(before)) = p.opt_time("before")
                && before >= w.earliest
                && before <= w.latest
            {
                let c = mk(format!("pitr:{before}"), "rds-pitr", before, true, None, None, src);
                out.push(Found { c, resource: resource.clone() });
            }
        }
        "backup" => {
            let rps = match p.opt_str("vault").ok().flatten() {
                Some(v) => cloud.backup.list_recovery_points_by_vault(region, v).await?,
                None if resource.starts_with("arn:") => {
                    cloud.backup.list_recovery_points_by_resource(region, &resource).await?
                }
                None => {
                    let db = cloud.rds.describe_db_instance(region, &resource).await?;
                    match db {
                        Some(d) => cloud.backup.list_recovery_points_by_resource(region, &d.arn).await?,
                        None => Vec::new(),
                    }
                }
            };
            for rp in rps {
                let matches = resource.is_empty()
                    || rp.resource_arn == resource
                    || rp.resource_arn.ends_with(&format!(":db:{resource}"));
                if rp.status != "COMPLETED" || !matches {
                    continue;
                }
                let src = format!("AWS Backup vault {} ({} {})", rp.vault, rp.resource_type, rp.resource_arn);
                let c = mk(
                    rp.arn.clone(),
                    "backup",
                    rp.created,
                    rp.encrypted,
                    Some(rp.size_bytes >> 30),
                    Some(rp.arn),
                    src,
                );
                out.push(Found { c, resource: rp.resource_arn });
            }
        }
        "ebs" => {
            let filter = match (p.opt_str("tag").ok().flatten(), resource.is_empty()) {
                (_, false) => Filter::tag("drconsole:source-volume", resource.clone()),
                (Some(t), true) => {
                    let (k, v) = super::kit::tag_pair(t);
                    Filter::tag(k, v)
                }
                (None, true) => return Ok(out),
            };
            let mut snaps = cloud.ec2.describe_snapshots(region, &filter).await?;
            if !resource.is_empty() {
                for sn in cloud.ec2.describe_snapshots_of_volume(region, &resource).await? {
                    if !snaps.iter().any(|x| x.id == sn.id) {
                        snaps.push(sn);
                    }
                }
            }
            for sn in snaps.into_iter().filter(|x| x.state == "completed") {
                let vol = sn.tags.get("drconsole:source-volume").cloned().unwrap_or(sn.volume_id.clone());
                let src = format!("EBS snapshot of {vol}: {}", sn.description);
                let c = mk(sn.id, "ebs-snapshot", sn.start_time, sn.encrypted, Some(sn.size_gib), None, src);
                out.push(Found { c, resource: vol });
            }
        }
        "ami" => {
            let (filter, prefix) = match resource.strip_suffix('*') {
                Some(pre) => (Filter::default(), Some(pre.to_string())),
                None if resource.starts_with("ami-") => (Filter::id(resource.clone()), None),
                None => (Filter::name(resource.clone()), None),
            };
            for im in cloud.ec2.describe_images(region, &filter).await? {
                if im.state != "available" || prefix.as_ref().is_some_and(|pre| !im.name.starts_with(pre.as_str())) {
                    continue;
                }
                let src = format!("AMI {}", im.name);
                let c = mk(im.id, "ami", im.created, im.encrypted, Some(im.size_gib), None, src);
                out.push(Found { c, resource: im.name });
            }
        }
        "s3" => {
            let bucket = p.opt_str("bucket").ok().flatten().unwrap_or_default();
            let prefix = p.opt_str("prefix").ok().flatten().unwrap_or_default();
            let mut groups: std::collections::BTreeMap<String, (Timestamp, u64, bool)> = Default::default();
            for o in cloud.s3.list_objects(region, bucket, prefix).await? {
                let rest = &o.key[prefix.len().min(o.key.len())..];
                let Some((stamp, _)) = rest.split_once('/') else { continue };
                let e = groups.entry(format!("{prefix}{stamp}/")).or_insert((o.last_modified, 0, true));
                e.0 = e.0.max(o.last_modified);
                e.1 += o.size_bytes;
                e.2 &= o.encrypted;
            }
            for (key, (t, size, enc)) in groups {
                let arn = format!("arn:aws:s3:::{bucket}/{key}");
                let src = format!("export s3://{bucket}/{key}");
                let c = mk(key, "s3-export", t, enc, Some(size >> 30), Some(arn), src);
                out.push(Found { c, resource: format!("s3://{bucket}/{prefix}") });
            }
        }
        _ => {}
    }
    Ok(out)
}

#[async_trait]
impl Action for Select {
    fn spec(&self) -> &'static ActionSpec {
        &SELECT
    }

    fn plan(&self, p: &Params) -> String {
        let source = p.opt_str("source").ok().flatten().unwrap_or("?");
        let what = match source {
            "s3" => format!(
                "s3://{}/{}",
                p.opt_str("bucket").ok().flatten().unwrap_or("?"),
                p.opt_str("prefix").ok().flatten().unwrap_or("")
            ),
            "ebs" if p.get("resource").is_none() => format!("tag {}", p.opt_str("tag").ok().flatten().unwrap_or("?")),
            "backup" if p.get("vault").is_some() => format!(
                "{} in vault {}",
                p.opt_str("resource").ok().flatten().unwrap_or("*"),
                p.opt_str("vault").ok().flatten().unwrap_or("?")
            ),
            _ => p.opt_str("resource").ok().flatten().unwrap_or("?").to_string(),
        };
        let regions = p.str_list("regions").unwrap_or_default();
        let regions = if regions.is_empty() { "primary and secondary".to_string() } else { regions.join(", ") };
        let policy = p.opt_str("policy").ok().flatten().unwrap_or("ask");
        format!("list {source} recovery points of {what} in {regions}; choose by policy `{policy}`")
    }

    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let source = p.str("source")?;
        if !["rds", "rds_pitr", "backup", "ebs", "ami", "s3"].contains(&source) {
            return Err(ActionError::fatal(format!(
                "parameter `source`: unknown source `{source}` (rds, rds_pitr, backup, ebs, ami, s3)"
            )));
        }
        let mut regions = p.str_list("regions")?;
        if regions.is_empty() {
            regions = vec![ctx.target.primary.clone(), ctx.target.secondary.clone()];
        }
        let prefer = p.opt_str("prefer_region")?.map_or_else(|| ctx.target.secondary.clone(), str::to_string);
        let mut found = Vec::new();
        let mut errors = Vec::new();
        for r in &regions {
            match list_region(cloud, p, source, r).await {
                Ok(f) => {
                    ctx.progress(format!("{r}: {} {source} recovery point(s)", f.len()), None);
                    found.extend(f);
                }
                Err(e) => {
                    ctx.progress(format!("{r}: cannot list recovery points: {e}"), None);
                    errors.push(e);
                }
            }
        }
        if found.is_empty() {
            if let Some(e) = errors.into_iter().next() {
                return Err(super::kit::cerr(e));
            }
            return Err(ActionError::fatal(format!(
                "no {source} recovery point found for {} in {}",
                p.opt_str("resource")?.or(p.opt_str("tag")?).or(p.opt_str("prefix")?).unwrap_or("?"),
                regions.join(", ")
            )));
        }
        let rpo = i64::try_from(ctx.rpo.as_secs()).unwrap_or(i64::MAX);
        for f in &mut found {
            f.c.age_secs = crate::run::clock::secs_between(f.c.time, ctx.incident_start).max(0);
            // an AMI holds code, not data: the RPO does not apply to it
            f.c.rpo_met = f.c.kind == "ami" || f.c.age_secs <= rpo;
        }
        // newest first; on equal times the preferred region (no cross-region copy needed)
        found.sort_by(|a, b| b.c.time.cmp(&a.c.time).then_with(|| (b.c.region == prefer).cmp(&(a.c.region == prefer))));
        let policy = p.opt_str("policy")?.unwrap_or("ask");
        let by_id = |id: &str| {
            found.iter().position(|f| f.c.id == id || f.c.arn.as_deref() == Some(id)).ok_or_else(|| {
                let some: Vec<&str> = found.iter().take(5).map(|f| f.c.id.as_str()).collect();
                ActionError::fatal(format!("recovery point `{id}` not found; the newest are: {}", some.join(", ")))
            })
        };
        let mut loss_accepted = false;
        let idx = match policy {
            "latest" => 0,
            "latest_before" => {
                let before = p.opt_time("before")?.ok_or_else(|| {
                    ActionError::fatal("policy `latest_before` needs the parameter `before` (an RFC 3339 time)")
                })?;
                found.iter().position(|f| f.c.time <= before).ok_or_else(|| {
                    ActionError::fatal(format!(
                        "no recovery point at or before {before}; the oldest is {}",
                        found[found.len() - 1].c.time
                    ))
                })?
            }
            "id" => by_id(p.str("id")?)?,
            "ask" => match ctx.recovery_point.as_deref().map(accepted) {
                Some((id, accept)) => {
                    loss_accepted = accept;
                    if id == "latest" { 0 } else { by_id(id)? }
                }
                None => {
                    let cands: Vec<Candidate> = found.iter().take(30).map(|f| f.c.clone()).collect();
                    let msg = format!(
                        "Choose the {source} recovery point to restore (RPO {})",
                        crate::util::fmt_duration(ctx.rpo)
                    );
                    let answer = ctx.choose(msg, cands).await?;
                    let (answer, accept) = accepted(&answer);
                    loss_accepted = accept;
                    if answer == "latest" { 0 } else { by_id(answer)? }
                }
            },
            other => {
                return Err(ActionError::fatal(format!(
                    "parameter `policy`: unknown policy `{other}` (latest, latest_before, id, ask)"
                )));
            }
        };
        let f = &found[idx];
        let c = &f.c;
        ctx.emit(EventKind::RecoveryPointChosen {
            step: ctx.step_id.clone(),
            id: c.id.clone(),
            kind: c.kind.clone(),
            region: c.region.clone(),
            time: c.time,
            rpo_secs: c.age_secs,
            rpo_met: c.rpo_met,
        });
        if !c.rpo_met {
            let msg = format!(
                "recovery point {} is {} old at the incident start: it does not meet the RPO of {}",
                c.id,
                crate::util::fmt_duration(std::time::Duration::from_secs(c.age_secs.unsigned_abs())),
                crate::util::fmt_duration(ctx.rpo)
            );
            if loss_accepted {
                ctx.progress(format!("the operator accepted the RPO loss: {msg}"), None);
            } else if p.bool_or("require_rpo", false)? {
                return Err(ActionError::fatal(format!(
                    "{msg} (require_rpo = true; to accept the data loss answer `{ACCEPT_RPO_LOSS}{}`)",
                    c.id
                )));
            } else {
                ctx.progress(format!("WARNING: {msg}"), None);
            }
        }
        Ok(outs(&[
            ("id", s(c.id.clone())),
            ("arn", s(c.arn.clone().unwrap_or_default())),
            ("time", s(c.time.to_string())),
            ("kind", s(c.kind.clone())),
            ("region", s(c.region.clone())),
            ("resource", s(f.resource.clone())),
            ("age_secs", Value::from(c.age_secs)),
            ("rpo_met", Value::Bool(c.rpo_met)),
        ]))
    }
}

/// For tests and the benchmark: the list of candidates `recovery_point.select` would offer.
pub async fn candidates(cloud: &Cloud, p: &Params, source: &str, region: &str) -> Result<Vec<Candidate>, ActionError> {
    Ok(c(list_region(cloud, p, source, region)).await?.into_iter().map(|f| f.c).collect())
}

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
        out("unreachable", "regions that did not answer (their recovery points were not offered), comma-separated"),
    ],
    iam: &[
        "rds:DescribeDBSnapshots",
        "rds:DescribeDBInstances",
        "backup:ListRecoveryPointsByResource",
        "backup:ListRecoveryPointsByBackupVault",
        "backup:ListBackupVaults",
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

/// The completed AWS Backup recovery points of `resource_type` (`RDS`, `EBS`) in a region's vaults: one
/// ListBackupVaults, then one listing per vault. A region without AWS Backup (or a vault that cannot be listed) is
/// a note, not an error: the snapshots themselves are still candidates.
pub(crate) async fn backup_points(
    cloud: &Cloud,
    region: &str,
    resource_type: &str,
    notes: &mut Vec<String>,
) -> Vec<crate::cloud::RecoveryPoint> {
    let mut out = Vec::new();
    match cloud.backup.list_backup_vaults(region).await {
        Ok(vaults) => {
            for vault in vaults {
                match cloud.backup.list_recovery_points_by_vault(region, &vault).await {
                    Ok(rps) => out.extend(rps.into_iter().filter(|r| r.resource_type == resource_type)),
                    Err(e) => notes.push(format!("AWS Backup vault {vault} in {region}: {e}")),
                }
            }
        }
        Err(e) => notes.push(format!("AWS Backup in {region} not used: {e}")),
    }
    out
}

/// The snapshot identifier in an RDS snapshot ARN (`arn:aws:rds:us-west-2:111111111111:snapshot:awsbackup:job-1`
/// → `awsbackup:job-1`), as AWS Backup names the snapshots it keeps for a database.
pub(crate) fn rds_snapshot_of_arn(arn: &str) -> Option<&str> {
    arn.split_once(":snapshot:").map(|(_, s)| s).filter(|s| !s.is_empty())
}

/// The recovery points of `source` in `region`. Copies another drill made (tagged `drconsole:drill` with another
/// run id) are left out: that drill's cleanup deletes them (`run_id` is empty outside a run: every drill's copy).
async fn list_region(
    cloud: &Cloud,
    p: &Params,
    source: &str,
    region: &str,
    run_id: &str,
    notes: &mut Vec<String>,
) -> CloudResult<Vec<Found>> {
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
            let (drill_copies, snaps): (Vec<_>, Vec<_>) = cloud
                .rds
                .describe_db_snapshots(region, &q)
                .await?
                .into_iter()
                .partition(|s| crate::drill_names::of_another_drill(&s.tags, run_id));
            if !drill_copies.is_empty() {
                notes.push(format!(
                    "{region}: {} RDS snapshot(s) a drill copied left out (its cleanup deletes them)",
                    drill_copies.len()
                ));
            }
            let wrong_engine = |e: &str| engine.as_ref().is_some_and(|want| !e.contains(want.as_str()));
            // most trusted first: AWS Backup's recovery points of the database (a copy job's too: their resource
            // ARN names the source database, their creation date is when its data was taken)
            let mut from_backup: Vec<String> = Vec::new();
            for rp in backup_points(cloud, region, "RDS", notes).await {
                let of_db = rp.resource_arn.rsplit_once(":db:").is_some_and(|(_, db)| db == resource);
                let Some(id) = rds_snapshot_of_arn(&rp.arn).map(str::to_string) else { continue };
                if !of_db {
                    continue;
                }
                let sn = snaps.iter().find(|s| s.arn == rp.arn || s.id == id);
                if rp.status != "COMPLETED" {
                    notes.push(format!("AWS Backup recovery point {} in {region}: status {}", rp.arn, rp.status));
                    continue;
                }
                if sn.is_some_and(|s| s.status != "available" || wrong_engine(&s.engine)) {
                    continue;
                }
                if drill_copies.iter().any(|s| s.arn == rp.arn || s.id == id) {
                    continue;
                }
                from_backup.push(rp.arn.clone());
                let src = format!(
                    "AWS Backup recovery point in vault {} of {} (time: its creation date)",
                    rp.vault, rp.resource_arn
                );
                let size = sn.map_or(rp.size_bytes >> 30, |s| s.storage_gib);
                let enc = rp.encrypted || sn.is_some_and(|s| s.encrypted);
                let c = mk(id, "rds-snapshot", rp.created, enc, Some(size), Some(rp.arn), src);
                out.push(Found { c, resource: resource.clone() });
            }
            for sn in snaps {
                if sn.status != "available" || wrong_engine(&sn.engine) || from_backup.contains(&sn.arn) {
                    continue;
                }
                let src = match &sn.source_arn {
                    Some(from) => format!(
                        "RDS {} snapshot of {}, copy of {from} (time: OriginalSnapshotCreateTime)",
                        sn.snapshot_type, sn.instance_id
                    ),
                    None => format!("RDS {} snapshot of {}", sn.snapshot_type, sn.instance_id),
                };
                let c = mk(sn.id, "rds-snapshot", sn.created, sn.encrypted, Some(sn.storage_gib), Some(sn.arn), src);
                out.push(Found { c, resource: resource.clone() });
            }
        }
        "rds_pitr" => {
            let w = match cloud.rds.restore_window(region, &resource).await {
                Ok(w) => w,
                Err(e) if e.is_not_found() => return Ok(out),
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
            // both regions at once: see `find_ebs` (called by `run`, not per region)
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
                if crate::drill_names::of_another_drill(&im.tags, run_id) {
                    notes.push(format!("{region}: AMI {} ({}) a drill copied left out", im.id, im.name));
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
        let mut unreachable: Vec<String> = Vec::new();
        let mut excluded: Vec<String> = Vec::new();
        if source == "ebs" {
            let wanted = match (p.opt_str("resource")?.filter(|r| !r.is_empty()), p.opt_str("tag")?) {
                (Some(v), _) => EbsWanted::Volume(v.to_string()),
                (None, Some(t)) => {
                    let (k, v) = super::kit::tag_pair(t);
                    EbsWanted::Tag(k, v)
                }
                (None, None) => return Err(ActionError::fatal("source `ebs` needs `resource` (a volume id) or `tag`")),
            };
            let (src, dst) = match regions.as_slice() {
                [one] => (one.clone(), one.clone()),
                [first, .., last] => (first.clone(), last.clone()),
                [] => (ctx.target.primary.clone(), ctx.target.secondary.clone()),
            };
            let ebs = super::kit::c(find_ebs(cloud, &wanted, &src, &dst, &ctx.run_id)).await?;
            for n in &ebs.notes {
                ctx.progress(n.clone(), None);
            }
            if let Some(u) = &ebs.unreachable {
                unreachable.push(src.clone());
                ctx.progress(format!("{u}: only {dst} recovery points are listed"), None);
            }
            excluded.extend(ebs.excluded.iter().cloned());
            for pt in ebs.points {
                if pt.snapshot.state != "completed" {
                    excluded.push(format!("{}: state {}", pt.describe(), pt.snapshot.state));
                    continue;
                }
                let c = Candidate {
                    id: pt.snapshot.id.clone(),
                    kind: "ebs-snapshot".into(),
                    region: pt.region.clone(),
                    time: pt.time,
                    age_secs: 0,
                    encrypted: pt.snapshot.encrypted,
                    size_gib: Some(pt.snapshot.size_gib),
                    rpo_met: false,
                    arn: None,
                    source: format!("EBS {}", pt.describe()),
                };
                found.push(Found { c, resource: pt.volume_key().unwrap_or_default() });
            }
        } else {
            for r in &regions {
                let mut notes = Vec::new();
                let listed = list_region(cloud, p, source, r, &ctx.run_id, &mut notes).await;
                for n in notes {
                    ctx.progress(n, None);
                }
                match listed {
                    Ok(f) => {
                        ctx.progress(format!("{r}: {} {source} recovery point(s)", f.len()), None);
                        found.extend(f);
                    }
                    Err(e) => {
                        if e.is_retryable() {
                            unreachable.push(r.clone());
                        }
                        ctx.progress_error(format!("{r}: cannot list recovery points: {e}"), &e);
                        errors.push(e);
                    }
                }
            }
        }
        let reachable: Vec<&String> = regions.iter().filter(|r| !unreachable.contains(r)).collect();
        let unreachable_note = if unreachable.is_empty() {
            String::new()
        } else {
            format!(
                " ({} unreachable: only {} recovery points are listed)",
                unreachable.join(", "),
                reachable.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
            )
        };
        if found.is_empty() {
            if let Some(e) = errors.into_iter().find(|e| !e.is_retryable() || unreachable.len() == regions.len()) {
                return Err(super::kit::cerr(e));
            }
            let seen = if excluded.is_empty() {
                "found nothing".to_string()
            } else {
                format!("found {}: {}", excluded.len(), super::kit::summary(&excluded, 10))
            };
            return Err(ActionError::fatal(format!(
                "no {source} recovery point found for {} in {}{unreachable_note}; {seen}",
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
                        "Choose the {source} recovery point to restore (RPO {}){unreachable_note}",
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
            ("unreachable", s(unreachable.join(","))),
        ]))
    }
}

/// For tests and the benchmark: the list of candidates `recovery_point.select` would offer.
pub async fn candidates(cloud: &Cloud, p: &Params, source: &str, region: &str) -> Result<Vec<Candidate>, ActionError> {
    Ok(c(list_region(cloud, p, source, region, "", &mut Vec::new())).await?.into_iter().map(|f| f.c).collect())
}

// ---------------------------------------------------------------------------------------------- EBS recovery points

/// Tag on a snapshot copy made by drconsole: when its source snapshot was taken (RFC 3339).
pub(crate) const TAG_SOURCE_TIME: &str = "drconsole:source-time";
/// Tag on a snapshot copy made by drconsole: the volume its source snapshot was taken of.
pub(crate) const TAG_SOURCE_VOLUME: &str = "drconsole:source-volume";
/// Tag on a snapshot copy made by drconsole: the snapshot it was copied from.
pub(crate) const TAG_SOURCE_SNAPSHOT: &str = "drconsole:source-snapshot";

/// `[Copied snap-0123 from us-east-1]`, as CopySnapshot (and Data Lifecycle Manager, and a Lambda calling it
/// without a description of its own) writes at the start of a copy's description: `(snapshot, region)`.
pub(crate) fn copied_from_description(description: &str) -> Option<(String, String)> {
    let rest = &description[description.find("[Copied ")? + "[Copied ".len()..];
    let (snap, rest) = rest.split_once(" from ")?;
    let (region, _) = rest.split_once(']')?;
    let ok = snap.starts_with("snap-") && !region.is_empty() && !region.contains(' ');
    ok.then(|| (snap.to_string(), region.to_string()))
}

/// The volume id in an EBS volume ARN (`arn:aws:ec2:us-east-1:111111111111:volume/vol-0abc`).
fn volume_of_arn(arn: &str) -> Option<&str> {
    arn.rsplit_once(":volume/").map(|(_, v)| v)
}

/// The snapshot id in an EBS recovery point ARN (`arn:aws:ec2:us-west-2::snapshot/snap-0abc`).
fn snapshot_of_arn(arn: &str) -> Option<&str> {
    arn.rsplit_once(":snapshot/").map(|(_, s)| s)
}

/// How the time of an EBS recovery point is known, most trusted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimeFrom {
    /// The AWS Backup recovery point's creation date.
    Backup,
    /// The snapshot is the original: its own start time.
    Own,
    /// The source snapshot's start time (found in the source region).
    Source,
    /// The `drconsole:source-time` tag drconsole put on its own copy.
    Tag,
    /// The copy's own start time: the source is unreachable and nothing else records its time, so this is an
    /// upper bound (the data is older).
    CopyStart,
}

impl TimeFrom {
    fn describe(self) -> &'static str {
        match self {
            TimeFrom::Backup => "the AWS Backup recovery point's creation date",
            TimeFrom::Own => "its start time",
            TimeFrom::Source => "its source snapshot's start time",
            TimeFrom::Tag => "the drconsole:source-time tag",
            TimeFrom::CopyStart => "the copy's start time (an upper bound: the source is unreachable)",
        }
    }
}

/// A snapshot holding a volume's data, in either region, with where its data came from and when it was taken.
#[derive(Debug, Clone)]
pub(crate) struct EbsPoint {
    pub snapshot: crate::cloud::Snapshot,
    pub region: String,
    /// The volume whose data it holds (for a copy: its source's volume), when known.
    pub volume: Option<String>,
    /// What groups it when the volume is not known: the copied `Name` tag.
    pub name_tag: Option<String>,
    /// For a copy: `(region, snapshot)` it was copied from.
    pub copied_from: Option<(String, String)>,
    /// When its data was taken.
    pub time: Timestamp,
    pub time_from: TimeFrom,
    /// What recognised it: `AWS Backup recovery point`, `CopySnapshot description`, `drconsole tags`...
    pub by: &'static str,
}

impl EbsPoint {
    /// The key of the volume it restores: the volume id, else the copied Name tag.
    pub fn volume_key(&self) -> Option<String> {
        self.volume.clone().or_else(|| self.name_tag.as_ref().map(|n| format!("Name={n}")))
    }

    /// One line for candidate lists and error messages.
    pub fn describe(&self) -> String {
        let what = match &self.copied_from {
            Some((r, s)) => format!("copy of {s} from {r}"),
            None => "original".to_string(),
        };
        format!(
            "{} in {} ({what}, {}, recognised by {}; time {} from {}, {})",
            self.snapshot.id,
            self.region,
            self.volume_key().unwrap_or_else(|| "volume unknown".into()),
            self.by,
            self.time,
            self.time_from.describe(),
            self.snapshot.state
        )
    }
}

/// What EBS recovery-point discovery found: the points of the wanted volumes in both regions, what it looked at
/// and left out (with the reason), and whether the source region answered.
#[derive(Debug, Default)]
pub(crate) struct EbsFound {
    pub points: Vec<EbsPoint>,
    /// The volumes (ids, or `Name=...` keys when only copies were seen).
    pub volumes: Vec<String>,
    /// `snapshot in region: reason`, for "nothing found" messages.
    pub excluded: Vec<String>,
    /// The source region did not answer: only the target region's points are listed.
    pub unreachable: Option<String>,
    pub notes: Vec<String>,
}

/// What to look for: the volumes with a tag, or one volume by id.
#[derive(Debug, Clone)]
pub(crate) enum EbsWanted {
    Tag(String, String),
    Volume(String),
}

impl EbsWanted {
    fn describe(&self) -> String {
        match self {
            EbsWanted::Tag(k, v) => format!("volumes tagged {k}={v}"),
            EbsWanted::Volume(v) => format!("volume {v}"),
        }
    }
}

/// Finds the recovery points of EBS volumes from what AWS and backup tooling record, in this order of trust:
/// 1. AWS Backup recovery points in `target`'s vaults (their resource ARN names the volume, their creation date
///    the time);
/// 2. copies recognised by the `[Copied snap-… from REGION]` description CopySnapshot and DLM write (the time is
///    the source snapshot's, read in `source` when it answers) or by the tags copied from the source (`Name`, the
///    volumes' tag);
/// 3. drconsole's own tags on the copies it made (`drconsole:source-volume`, `drconsole:source-snapshot`,
///    `drconsole:source-time`);
/// 4. the snapshots of the volumes in `source` itself.
///
/// When `source` does not answer (a regional outage), only `target`'s snapshots are used and `unreachable` says so.
pub(crate) async fn find_ebs(
    cloud: &Cloud,
    wanted: &EbsWanted,
    source: &str,
    target: &str,
    run_id: &str,
) -> Result<EbsFound, crate::cloud::CloudError> {
    let mut found = EbsFound::default();
    // the volumes, in the source region
    let mut volumes: Vec<String> = Vec::new();
    let source_up = match wanted {
        EbsWanted::Volume(v) => {
            volumes.push(v.clone());
            true
        }
        EbsWanted::Tag(k, v) => match cloud.ec2.describe_volumes(source, &Filter::tag(k.clone(), v.clone())).await {
            Ok(vs) => {
                volumes.extend(vs.into_iter().map(|x| x.id));
                true
            }
            Err(e) if e.is_retryable() => {
                found.unreachable = Some(format!("{source}: {e}"));
                false
            }
            Err(e) => return Err(e),
        },
    };
    // the source's snapshots of those volumes (one call per volume: the volume-id filter)
    let mut source_snaps: Vec<crate::cloud::Snapshot> = Vec::new();
    // (also when source and target are one region: its own snapshots are then the candidates)
    if source_up {
        for v in &volumes {
            match cloud.ec2.describe_snapshots_of_volume(source, v).await {
                Ok(l) => source_snaps.extend(l),
                Err(e) if e.is_retryable() => {
                    found.unreachable = Some(format!("{source}: {e}"));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    // AWS Backup recovery points in the target region's vaults
    let mut backup: std::collections::BTreeMap<String, crate::cloud::RecoveryPoint> = Default::default();
    for rp in backup_points(cloud, target, "EBS", &mut found.notes).await {
        if let Some(s) = snapshot_of_arn(&rp.arn) {
            backup.insert(s.to_string(), rp);
        }
    }
    // every snapshot of the account in the target region, recognised by what it carries
    let target_snaps =
        if source == target { Vec::new() } else { cloud.ec2.describe_snapshots(target, &Filter::default()).await? };
    let tag_match = |t: &crate::cloud::Tags| match wanted {
        EbsWanted::Tag(k, v) => t.get(k) == Some(v),
        EbsWanted::Volume(_) => false,
    };
    for s in target_snaps {
        // a copy another drill made: that drill's cleanup deletes it
        if crate::drill_names::of_another_drill(&s.tags, run_id) {
            if tag_match(&s.tags) || s.tags.contains_key(TAG_SOURCE_VOLUME) {
                found.excluded.push(format!("{} in {target}: a drill's copy (its cleanup deletes it)", s.id));
            }
            continue;
        }
        let rp = backup.get(&s.id);
        let described = copied_from_description(&s.description).map(|(snap, region)| (region, snap));
        let tagged_from = s.tags.get(TAG_SOURCE_SNAPSHOT).map(|id| (source.to_string(), id.clone()));
        let copied_from = described.clone().or(tagged_from);
        let source_snap = copied_from
            .as_ref()
            .and_then(|(r, id)| (r == source).then_some(id))
            .and_then(|id| source_snaps.iter().find(|x| &x.id == id));
        let volume = rp
            .and_then(|r| volume_of_arn(&r.resource_arn).map(str::to_string))
            .or_else(|| source_snap.map(|x| x.volume_id.clone()))
            .or_else(|| s.tags.get(TAG_SOURCE_VOLUME).cloned());
        let by = if rp.is_some() {
            "AWS Backup recovery point"
        } else if described.is_some() {
            "CopySnapshot description"
        } else if s.tags.contains_key(TAG_SOURCE_VOLUME) {
            "drconsole tags"
        } else if tag_match(&s.tags) {
            "copied tags"
        } else {
            continue;
        };
        let wanted_here = match &volume {
            Some(v) => volumes.contains(v) || (!source_up && tag_match(&s.tags)),
            None => tag_match(&s.tags),
        };
        if !wanted_here {
            if tag_match(&s.tags) {
                found.excluded.push(format!(
                    "{} in {target}: of volume {:?}, not one of the {}",
                    s.id,
                    volume,
                    wanted.describe()
                ));
            }
            continue;
        }
        let (time, time_from) = if let Some(r) = rp {
            (r.created, TimeFrom::Backup)
        } else if let Some(x) = source_snap {
            (x.start_time, TimeFrom::Source)
        } else if let Some(t) = s.tags.get(TAG_SOURCE_TIME).and_then(|t| t.parse().ok()) {
            (t, TimeFrom::Tag)
        } else if copied_from.is_some() || by == "copied tags" {
            (s.start_time, TimeFrom::CopyStart)
        } else {
            (s.start_time, TimeFrom::Own)
        };
        found.points.push(EbsPoint {
            name_tag: s.tags.get("Name").cloned(),
            snapshot: s,
            region: target.to_string(),
            volume,
            copied_from,
            time,
            time_from,
            by,
        });
    }
    for s in source_snaps {
        found.points.push(EbsPoint {
            name_tag: s.tags.get("Name").cloned(),
            volume: Some(s.volume_id.clone()),
            region: source.to_string(),
            copied_from: None,
            time: s.start_time,
            time_from: TimeFrom::Own,
            by: "volume id",
            snapshot: s,
        });
    }
    if volumes.is_empty() {
        // the source region is down (or has no such volume): the copies say which volumes there were
        let mut keys: Vec<String> = found.points.iter().filter_map(EbsPoint::volume_key).collect();
        keys.sort();
        keys.dedup();
        volumes = keys;
    }
    // a point whose volume is unknown but whose Name matches a known point's: the same volume
    let names: std::collections::BTreeMap<String, String> =
        found.points.iter().filter_map(|p| Some((p.name_tag.clone()?, p.volume.clone()?))).collect();
    for p in &mut found.points {
        if p.volume.is_none()
            && let Some(v) = p.name_tag.as_ref().and_then(|n| names.get(n))
        {
            p.volume = Some(v.clone());
        }
    }
    volumes.retain(|v| !v.starts_with("Name=") || found.points.iter().any(|p| p.volume_key().as_deref() == Some(v)));
    volumes.sort();
    volumes.dedup();
    found.volumes = volumes;
    Ok(found)
}

/// The newest completed point of a volume at or before `before`; on equal times the `prefer` region's (no copy
/// needed). Every point it passes over is added to `excluded` with the condition that excluded it.
pub(crate) fn pick_ebs<'a>(
    points: &'a [EbsPoint],
    volume: &str,
    before: Option<Timestamp>,
    prefer: &str,
    excluded: &mut Vec<String>,
) -> Option<&'a EbsPoint> {
    let mut qualified: Vec<&EbsPoint> = Vec::new();
    for p in points.iter().filter(|p| p.volume_key().as_deref() == Some(volume)) {
        if p.snapshot.state != "completed" {
            excluded.push(format!("{}: state {}", p.describe(), p.snapshot.state));
            continue;
        }
        if let Some(b) = before
            && p.time > b
        {
            excluded.push(format!("{}: taken after {b}", p.describe()));
            continue;
        }
        qualified.push(p);
    }
    // a copy whose source time is unknown (only its copy's start, an upper bound) is used only when no point
    // with a known time qualifies: its data may be older than a known point's
    let known: Vec<&EbsPoint> = qualified.iter().copied().filter(|p| p.time_from != TimeFrom::CopyStart).collect();
    let pool = if known.is_empty() { qualified } else { known };
    let mut best: Option<&EbsPoint> = None;
    for p in pool {
        let better = match best {
            None => true,
            Some(b) => p.time > b.time || (p.time == b.time && p.region == prefer && b.region != prefer),
        };
        if better {
            best = Some(p);
        }
    }
    best
}

#[cfg(test)]
mod ebs_tests {
    use super::*;

    #[test]
    fn copy_descriptions_name_their_source() {
        assert_eq!(
            copied_from_description("[Copied snap-0a1b2c3d4e5f60718 from us-east-1]"),
            Some(("snap-0a1b2c3d4e5f60718".into(), "us-east-1".into()))
        );
        assert_eq!(
            copied_from_description("[Copied snap-01 from eu-west-1] hourly backup of vol-9"),
            Some(("snap-01".into(), "eu-west-1".into()))
        );
        assert_eq!(copied_from_description("hourly backup"), None);
        assert_eq!(copied_from_description("[Copied ami-01 from us-east-1]"), None);
        assert_eq!(volume_of_arn("arn:aws:ec2:us-east-1:111111111111:volume/vol-0abc"), Some("vol-0abc"));
        assert_eq!(snapshot_of_arn("arn:aws:ec2:us-west-2::snapshot/snap-0abc"), Some("snap-0abc"));
    }

    fn point(id: &str, region: &str, state: &str, time: &str) -> EbsPoint {
        let time: Timestamp = time.parse().unwrap_or_else(|e| panic!("{time}: {e}"));
        EbsPoint {
            snapshot: crate::cloud::Snapshot {
                id: id.into(),
                volume_id: "vol-1".into(),
                state: state.into(),
                progress_pct: 100,
                start_time: time,
                size_gib: 8,
                encrypted: false,
                kms_key_id: None,
                description: String::new(),
                tags: crate::cloud::Tags::new(),
            },
            region: region.into(),
            volume: Some("vol-1".into()),
            name_tag: None,
            copied_from: None,
            time,
            time_from: TimeFrom::Own,
            by: "its volume id",
        }
    }

    // "no completed snapshot of vol-... in us-east-1 or us-west-2" hid 12 completed snapshots, all after the
    // database's time: every point passed over is listed with the condition that excluded it
    #[test]
    fn every_point_passed_over_is_listed_with_the_condition_that_excluded_it() {
        let points = vec![
            point("snap-late1", "us-east-1", "completed", "2026-12-01T21:10:00Z"),
            point("snap-late2", "us-west-2", "completed", "2026-12-01T21:20:00Z"),
            point("snap-pending", "us-west-2", "pending", "2026-12-01T20:50:00Z"),
        ];
        let before: Timestamp = "2026-12-01T21:00:00Z".parse().unwrap_or_else(|e| panic!("{e}"));
        let mut excluded = Vec::new();
        assert!(pick_ebs(&points, "vol-1", Some(before), "us-west-2", &mut excluded).is_none());
        assert_eq!(excluded.len(), 3, "{excluded:?}");
        assert!(
            excluded[0].starts_with("snap-late1 in us-east-1")
                && excluded[0].ends_with("taken after 2026-12-01T21:00:00Z")
        );
        assert!(excluded[1].starts_with("snap-late2 in us-west-2") && excluded[1].contains("taken after"));
        assert!(excluded[2].starts_with("snap-pending in us-west-2") && excluded[2].ends_with("state pending"));
        // without the time bound, the newest completed one is taken and nothing else is listed as excluded
        let mut excluded = Vec::new();
        let best = pick_ebs(&points, "vol-1", None, "us-west-2", &mut excluded).map(|p| p.snapshot.id.clone());
        assert_eq!(best.as_deref(), Some("snap-late2"));
        assert_eq!(excluded.len(), 1, "{excluded:?}");
    }
}

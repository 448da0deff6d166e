//! `recovery_point.select`: lists the recovery points of a resource across sources and regions and picks one.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde_json::Value;

use super::kit::{c, outs, s};
use super::spec::{ActionSpec, Effect, ParamKind as K, ParamSpec as P, out};
use super::{Action, ActionCtx, ActionError, Outputs, Params};
use crate::cloud::{Cloud, CloudResult, DbSnapshotQuery, Filter};
use crate::run::{Candidate, EventKind, RpoVerdict};

pub use super::ebs_points::SET_UNKNOWN;
pub(crate) use super::ebs_points::{
    CopyConvention, EbsFound, EbsOpts, EbsPoint, EbsWanted, SetFrom, TAG_SOURCE_SNAPSHOT, TAG_SOURCE_TIME,
    TAG_SOURCE_VOLUME, describe_unattributed, find_ebs, plan_set, resolve_set,
};
use super::points::backup_points;

pub use super::points::ACCEPT_RPO_LOSS;

/// An answer's recovery point part and its EBS-set decision (`latest+ebs=newest`): `newest`, `consistent` or
/// `db:ID` (README: "When the primary region is down").
pub(crate) fn answer_parts(answer: &str) -> (&str, Option<&str>) {
    match answer.split_once("+ebs=") {
        Some((point, set)) => (point, Some(set)),
        None => match answer.strip_prefix("ebs=") {
            Some(set) => ("", Some(set)),
            None => (answer, None),
        },
    }
}

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
        P::opt(
            "ebs_tag",
            K::Str,
            "rds/backup/rds_pitr: the EBS volumes (key=value) restored with the database: the whole set is judged with \
             the point (every volume attributed, consistent, RPO) before anything is restored; output ebs_snapshots",
        ),
        P::opt(
            "copy_source_tag",
            K::Str,
            "ebs: the tag on a copy naming its source snapshot or volume (the customer's convention)",
        ),
        P::opt("copy_time_tag", K::Str, "ebs: the tag on a copy holding its source snapshot's time"),
        P::opt(
            "copy_description",
            K::Str,
            "ebs: a copy's description pattern, with {snapshot}, {volume}, {time} and {*} holes",
        ),
        P::opt("tolerance", K::Duration, "ebs_tag: how far apart a consistent set's members may be (default 15m)"),
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
        out("verdict", "met, missed or unknown (the point's time only a bound), for the whole set with ebs_tag"),
        out(
            "ebs_snapshots",
            "with ebs_tag: the EBS set judged with the point, volume=snapshot@region, comma-separated (else empty)",
        ),
        out("size_gib", "the point's size in GiB, when known (the forecast scales the steps that restore it)"),
        out("ebs_size_gib", "with ebs_tag: the EBS set's size in GiB (the forecast scales its restore by it)"),
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
        // candidates whose time is only an upper bound (a copy's own start)
        let mut bounded: Vec<String> = Vec::new();
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
            let opts = EbsOpts::for_step(ctx, p)?;
            let ebs = super::kit::c(find_ebs(cloud, &wanted, &src, &dst, &ctx.run_id, &opts)).await?;
            say_found(ctx, &ebs);
            if let Some(u) = &ebs.unreachable {
                unreachable.push(src.clone());
                ctx.progress(format!("{u}: only {dst} recovery points are listed"), None);
            }
            excluded.extend(ebs.excluded.iter().cloned());
            if !ebs.unattributed.is_empty() {
                excluded.push(format!(
                    "{} cop{} not attributed to a volume ({})",
                    ebs.unattributed.len(),
                    if ebs.unattributed.len() == 1 { "y" } else { "ies" },
                    super::ebs_points::how_to_resolve(&ebs)
                ));
            }
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
                if pt.bound() {
                    bounded.push(pt.snapshot.id.clone());
                }
                found.push(Found { c, resource: pt.volume.clone() });
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
            f.c.rpo_met = f.c.kind == "ami" || (f.c.age_secs <= rpo && !bounded.contains(&f.c.id));
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
        let mut idx = match policy {
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
            "ask" => {
                match ctx.recovery_point.as_deref().map(|a| answer_parts(a).0).filter(|a| !a.is_empty()).map(accepted) {
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
                }
            }
            other => {
                return Err(ActionError::fatal(format!(
                    "parameter `policy`: unknown policy `{other}` (latest, latest_before, id, ask)"
                )));
            }
        };
        // the whole set: the database point and every EBS volume, judged before anything is restored
        let mut ebs_snapshots = String::new();
        let mut ebs_size_gib: Option<u64> = None;
        let mut set_verdict: Option<RpoVerdict> = None;
        if source != "ebs"
            && let Some(tag) = p.opt_str("ebs_tag")?.filter(|t| !t.trim().is_empty())
        {
            let (ebs, plan, new_idx) = judge_set(ctx, cloud, p, tag, &found, idx, &prefer).await?;
            // an older database point chosen for the set's sake is the operator's acceptance of its loss
            loss_accepted |= new_idx != idx;
            idx = new_idx;
            if let Some((t, b)) = plan.oldest() {
                let age = crate::run::clock::secs_between(t, ctx.incident_start).max(0);
                set_verdict = Some(RpoVerdict::judge(age, ctx.rpo.as_secs(), b));
            }
            ebs_size_gib = Some(plan.picks.iter().map(|(_, pt)| pt.snapshot.size_gib).sum());
            ebs_snapshots = plan
                .picks
                .iter()
                .map(|(v, pt)| format!("{v}={}@{}", pt.snapshot.id, pt.region))
                .collect::<Vec<_>>()
                .join(",");
            ctx.progress(
                format!(
                    "EBS set of {} ({} volume(s), {}): {}",
                    ebs.what,
                    plan.picks.len(),
                    set_from_text(&ebs),
                    plan.picks.iter().map(|(_, pt)| pt.describe()).collect::<Vec<_>>().join("; ")
                ),
                None,
            );
        }
        let f = &found[idx];
        let c = &f.c;
        let bound = bounded.contains(&c.id);
        let verdict = RpoVerdict::judge(c.age_secs, ctx.rpo.as_secs(), bound);
        ctx.emit(EventKind::RecoveryPointChosen {
            step: ctx.step_id.clone(),
            id: c.id.clone(),
            kind: c.kind.clone(),
            region: c.region.clone(),
            time: c.time,
            rpo_secs: c.age_secs,
            rpo_met: c.rpo_met,
            verdict: Some(verdict),
            bound,
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
            ("verdict", s(set_verdict.map_or(verdict, |v| v.max(verdict)).as_str().to_string())),
            ("ebs_snapshots", s(ebs_snapshots)),
            ("size_gib", c.size_gib.map_or(Value::Null, Value::from)),
            ("ebs_size_gib", ebs_size_gib.map_or(Value::Null, Value::from)),
        ]))
    }
}

/// For tests and the benchmark: the list of candidates `recovery_point.select` would offer.
pub async fn candidates(cloud: &Cloud, p: &Params, source: &str, region: &str) -> Result<Vec<Candidate>, ActionError> {
    Ok(c(list_region(cloud, p, source, region, "", &mut Vec::new())).await?.into_iter().map(|f| f.c).collect())
}

/// Says what an EBS search used and could not see: notes, the DR inventory (its time and age), the source region.
pub(crate) fn say_found(ctx: &ActionCtx, ebs: &EbsFound) {
    for n in &ebs.notes {
        ctx.progress(n.clone(), None);
    }
    if let Some(taken) = ebs.inventory_used {
        let age = crate::run::clock::secs_between(taken, ctx.clock.now()).max(0);
        ctx.warn(format!(
            "{} used the DR inventory of {} ({} old): {}",
            ebs.what,
            taken.strftime("%Y-%m-%d %H:%M:%SZ"),
            crate::util::fmt_duration(std::time::Duration::from_secs(age.unsigned_abs())),
            set_from_text(ebs)
        ));
    }
    if ebs.set_from == SetFrom::Copies {
        ctx.warn(format!(
            "the {} are taken from what the attributed copies name ({}): {} did not answer and there is no DR \
             inventory, so the primary may have had more",
            ebs.what,
            ebs.volumes.join(", "),
            ebs.source
        ));
    }
}

/// Where the set of volumes came from, for the log.
pub(crate) fn set_from_text(ebs: &EbsFound) -> String {
    match ebs.set_from {
        SetFrom::Live => format!("the volumes {} has now", ebs.source),
        SetFrom::Inventory => format!("the volumes the DR inventory recorded in {}", ebs.source),
        SetFrom::Given => "the volume named".to_string(),
        SetFrom::Copies => "the volumes the attributed copies name".to_string(),
        SetFrom::Unknown => "no volume known".to_string(),
    }
}

/// Judges the EBS set with the chosen database point `found[idx]`: every volume of the primary's set attributed
/// (else the operator is asked; headless stops), at or before the point. When the point meets the RPO and the
/// consistent set does not, the operator chooses (or `--recovery-point …+ebs=newest|consistent|db:ID` answered):
/// the newest points (inconsistent with the database by the minutes shown), the consistent set (the loss), or an
/// older database point that makes the set consistent. Returns the set, its plan and the (maybe older) point.
async fn judge_set(
    ctx: &ActionCtx,
    cloud: &Cloud,
    p: &Params,
    tag: &str,
    found: &[Found],
    idx: usize,
    prefer: &str,
) -> Result<(EbsFound, super::ebs_points::SetPlan, usize), ActionError> {
    use super::ebs_points::SetPlan;
    let (k, v) = super::kit::tag_pair(tag);
    let opts = EbsOpts::for_step(ctx, p)?;
    let (src, dst) = (ctx.target.primary.clone(), ctx.target.secondary.clone());
    let mut ebs = c(find_ebs(cloud, &EbsWanted::Tag(k, v), &src, &dst, &ctx.run_id, &opts)).await?;
    say_found(ctx, &ebs);
    let tolerance = i64::try_from(p.opt_duration("tolerance")?.map_or(15 * 60, |d| d.as_secs())).unwrap_or(i64::MAX);
    let db = &found[idx].c;
    let plan = resolve_set(ctx, &mut ebs, Some(db.time), prefer).await?;
    let rpo = ctx.rpo.as_secs();
    let judge = |plan: &SetPlan| {
        plan.oldest().map(|(t, b)| {
            let age = crate::run::clock::secs_between(t, ctx.incident_start).max(0);
            (age, b, RpoVerdict::judge(age, rpo, b))
        })
    };
    let Some((age, bound, verdict)) = judge(&plan) else { return Ok((ebs, plan, idx)) };
    // asked only when the set misses for sure; an `unknown` set (a member's time only a bound) is said by its
    // verdict and a warning when it is restored
    if RpoVerdict::judge(db.age_secs, rpo, false) != RpoVerdict::Met || verdict != RpoVerdict::Missed {
        return Ok((ebs, plan, idx));
    }
    // the database point met the RPO, the consistent set does not: the alternatives
    let loss = crate::run::fmt_loss(age, bound);
    let mk = |id: String, time: Timestamp, age: i64, met: bool, text: String| Candidate {
        id,
        kind: "ebs-set".into(),
        region: dst.clone(),
        time,
        age_secs: age,
        encrypted: true,
        size_gib: None,
        rpo_met: met,
        arn: None,
        source: text,
    };
    let oldest = plan.oldest().map_or(db.time, |o| o.0);
    let mut cands = vec![mk(
        "ebs=consistent".into(),
        oldest,
        age,
        false,
        format!(
            "the set at or before the database point: consistent (members {} apart), data loss {loss} ({})",
            crate::util::fmt_duration(std::time::Duration::from_secs(plan.spread_secs().unsigned_abs())),
            verdict.as_str()
        ),
    )];
    let newest = plan_set(&ebs, None, prefer);
    if newest.problems.is_empty()
        && let Some((nage, nb, nv)) = judge(&newest)
    {
        let apart = newest
            .picks
            .iter()
            .map(|(_, pt)| crate::run::clock::secs_between(db.time, pt.time).abs())
            .max()
            .unwrap_or(0);
        cands.push(mk(
            "ebs=newest".into(),
            newest.oldest().map_or(db.time, |o| o.0),
            nage,
            nv == RpoVerdict::Met,
            format!(
                "the newest point of each volume: data loss {} ({}), inconsistent with the database by up to {}",
                crate::run::fmt_loss(nage, nb),
                nv.as_str(),
                crate::util::fmt_duration(std::time::Duration::from_secs(apart.unsigned_abs()))
            ),
        ));
    }
    let older = (idx + 1..found.len()).find(|&j| {
        let t = found[j].c.time;
        let pl = plan_set(&ebs, Some(t), prefer);
        pl.problems.is_empty()
            && pl.picks.iter().all(|(_, pt)| crate::run::clock::secs_between(pt.time, t) <= tolerance)
    });
    if let Some(j) = older {
        let o = &found[j].c;
        cands.push(mk(
            format!("ebs=db:{}", o.id),
            o.time,
            o.age_secs,
            false,
            format!(
                "an older database point {} ({} old) with which the set is consistent",
                o.id,
                crate::util::fmt_duration(std::time::Duration::from_secs(o.age_secs.unsigned_abs()))
            ),
        ));
    }
    let flag = ctx.recovery_point.as_deref().and_then(|a| answer_parts(a).1).map(|d| format!("ebs={d}"));
    let decision = match flag {
        Some(d) => {
            ctx.progress(format!("EBS set decision `{d}` given by --recovery-point (not asked)"), None);
            d
        }
        None => {
            let msg = format!(
                "The database point {} meets the RPO of {}, but the EBS set consistent with it does not (data loss \
                 {loss}, {}): choose the set to restore",
                db.id,
                crate::util::fmt_duration(ctx.rpo),
                verdict.as_str()
            );
            let answer = ctx.choose(msg, cands.clone()).await?;
            // the console confirms a choice that does not meet the RPO with `accept-rpo-loss:ID`
            answer.strip_prefix(ACCEPT_RPO_LOSS).unwrap_or(&answer).to_string()
        }
    };
    let chosen = cands.iter().find(|c| c.id == decision).ok_or_else(|| {
        ActionError::fatal(format!(
            "EBS set decision `{decision}` is not one of the alternatives: {}",
            cands.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ")
        ))
    })?;
    ctx.warn(format!("EBS set decision: {} — {}", chosen.id, chosen.source));
    match decision.as_str() {
        "ebs=newest" => Ok((ebs, newest, idx)),
        "ebs=consistent" => Ok((ebs, plan, idx)),
        other => {
            let id = other.trim_start_matches("ebs=db:");
            let j = found.iter().position(|f| f.c.id == id).unwrap_or(idx);
            let pl = plan_set(&ebs, Some(found[j].c.time), prefer);
            Ok((ebs, pl, j))
        }
    }
}

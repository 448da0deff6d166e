//! RDS: copy a snapshot across regions, restore from a snapshot or to a point in time, modify, wait until
//! available; and `backup.restore_rds` (an AWS Backup recovery point into a new instance).
//! Every restore is keyed by the target instance id: a second run finds it and waits instead of creating.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::kit::{POLL_SLOW, c, copy_route, outs, region, s, source_region, token, wait_state};
use super::spec::{ActionSpec, Effect, ParamKind as K, ParamSpec as P, out};
use super::{Action, ActionCtx, ActionError, Outputs, Params};
use crate::cloud::{
    Cloud, CopyDbSnapshot, DbInstance, DbSnapshotQuery, ModifyDbInstance, RestoreDbFromSnapshot,
    RestoreDbToPointInTime, StartRestoreJob,
};

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![
        Arc::new(CopySnapshot),
        Arc::new(RestoreSnapshot),
        Arc::new(RestorePitr),
        Arc::new(Modify),
        Arc::new(WaitAvailable),
        Arc::new(BackupRestore),
    ]
}

const ENDPOINT_OUTPUTS: &[super::spec::OutputSpec] = &[
    out("instance", "the DB instance id"),
    out("arn", "the DB instance ARN"),
    out("endpoint", "the endpoint host name"),
    out("port", "the port"),
];

/// Waits until an instance is available and returns its endpoint outputs.
async fn wait_db(ctx: &ActionCtx, cloud: &Cloud, region: &str, id: &str) -> Result<Outputs, ActionError> {
    Ok(db_outputs(&wait_db_instance(ctx, cloud, region, id, None).await?))
}

/// Waits until an instance is available and returns it, as last described (no describe after the wait). `known`
/// is the instance as the caller just described it: when it is available already, nothing is called.
async fn wait_db_instance(
    ctx: &ActionCtx,
    cloud: &Cloud,
    region: &str,
    id: &str,
    known: Option<DbInstance>,
) -> Result<DbInstance, ActionError> {
    if let Some(d) = known.filter(|d| d.status == "available") {
        return Ok(d);
    }
    let last: std::sync::Mutex<Option<DbInstance>> = std::sync::Mutex::new(None);
    wait_state(
        ctx,
        "rds-instance",
        id,
        region,
        POLL_SLOW,
        &["available"],
        &["failed", "incompatible-restore", "incompatible-parameters", "storage-full"],
        || async {
            match cloud.rds.poll_db_instance(region, id).await? {
                Some(d) => {
                    let status = d.status.clone();
                    *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(d);
                    Ok((status, None))
                }
                None => Ok(("missing".to_string(), None)),
            }
        },
    )
    .await?;
    let d = last.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    d.ok_or_else(|| ActionError::fatal(format!("DB instance {id} in {region} disappeared")))
}

fn db_outputs(d: &DbInstance) -> Outputs {
    outs(&[
        ("instance", s(d.id.clone())),
        ("arn", s(d.arn.clone())),
        ("endpoint", s(d.endpoint.clone().unwrap_or_default())),
        ("port", Value::from(d.port)),
    ])
}

/// Reads the master credentials from Secrets Manager (never inline) and marks the value secret.
async fn master_password(
    ctx: &ActionCtx,
    cloud: &Cloud,
    region: &str,
    p: &Params,
) -> Result<Option<String>, ActionError> {
    let Some(id) = p.opt_str("master_secret")? else { return Ok(None) };
    let v = c(cloud.secrets.get_secret_value(region, id)).await?;
    // a JSON secret {"username":..., "password":...} or a bare password
    let pw = serde_json::from_str::<Value>(&v.value)
        .ok()
        .and_then(|j| j.get("password").and_then(Value::as_str).map(str::to_string))
        .unwrap_or(v.value);
    if pw.len() < 8 {
        return Err(ActionError::fatal(format!("secret {id}: the master password is shorter than 8 characters")));
    }
    ctx.register_secret(&pw);
    Ok(Some(pw))
}

/// An existing instance: report it found; refuse if it is not what this step would have made.
async fn find_existing(
    ctx: &ActionCtx,
    cloud: &Cloud,
    region: &str,
    id: &str,
) -> Result<Option<DbInstance>, ActionError> {
    let d = c(cloud.rds.describe_db_instance(region, id)).await?;
    if let Some(d) = &d {
        ctx.resource("found", "rds-instance", id, region, &d.status);
    }
    Ok(d)
}

/// A snapshot in `region` given by id or ARN: `(id, arn)`, the ARN as RDS writes it
/// (`arn:PARTITION:rds:REGION:ACCOUNT:snapshot:ID`) with the partition and account of the caller's identity.
async fn same_region_snapshot(cloud: &Cloud, region: &str, snapshot: &str) -> Result<(String, String), ActionError> {
    if let Some(id) = snapshot.strip_prefix("arn:").and_then(|_| snapshot.split_once(":snapshot:")).map(|(_, id)| id) {
        return Ok((id.to_string(), snapshot.to_string()));
    }
    let me = c(cloud.sts.get_caller_identity(region)).await?;
    let partition = me.arn.split(':').nth(1).filter(|p| !p.is_empty()).unwrap_or("aws");
    Ok((snapshot.to_string(), format!("arn:{partition}:rds:{region}:{}:snapshot:{snapshot}", me.account)))
}

struct CopySnapshot;
static COPY_SNAPSHOT: ActionSpec = ActionSpec {
    name: "rds.copy_snapshot",
    summary: "Copy an RDS snapshot to another region, re-encrypted with the target region's KMS key",
    params: &[
        P::req("snapshot", K::Str, "the snapshot id or ARN to copy (a recovery point)"),
        P::opt("source_region", K::Region, "where the snapshot is (default: primary)"),
        P::opt("region", K::Region, "where to copy it (default: secondary)"),
        P::req("target_id", K::Str, "the copy's identifier (deterministic: a second run finds it)"),
        P::opt("kms_key", K::Str, "KMS key id/ARN in the target region (required for encrypted snapshots)"),
    ],
    outputs: &[
        out("id", "the snapshot id in the target region"),
        out("arn", "its ARN"),
        out("size_gib", "the snapshot's allocated storage in GiB, when it was copied (the forecast scales by it)"),
    ],
    iam: &[
        "rds:CopyDBSnapshot",
        "rds:DescribeDBSnapshots",
        "rds:AddTagsToResource",
        "kms:CreateGrant",
        "kms:DescribeKey",
    ],
    expected_secs: 900,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for CopySnapshot {
    fn spec(&self) -> &'static ActionSpec {
        &COPY_SNAPSHOT
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "rds:CopyDBSnapshot {} {} as {} (KMS {}); wait until available",
            p.text("snapshot").unwrap_or_default(),
            copy_route(p),
            p.text("target_id").unwrap_or_default(),
            p.text("kms_key").unwrap_or_else(|_| "default".into()),
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let (src_region, region) = (source_region(ctx, p)?, region(ctx, p)?);
        let snapshot = p.str("snapshot")?;
        let target = p.str("target_id")?;
        if src_region == region {
            // already where it is needed (the picker listed it there a moment ago): nothing to copy and nothing to
            // look up. Its ARN follows from the account and partition of the run's identity (asked once per run);
            // the restore that uses it fails with DBSnapshotNotFound, naming it, should it have gone since
            let (id, arn) = same_region_snapshot(cloud, &region, snapshot).await?;
            ctx.progress(format!("snapshot {id} is in {region} already: nothing to copy"), None);
            return Ok(outs(&[("id", s(id)), ("arn", s(arn))]));
        }
        let src = c(cloud.rds.describe_db_snapshots(
            &src_region,
            &DbSnapshotQuery { snapshot_id: Some(snapshot.into()), include_automated: true, ..Default::default() },
        ))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ActionError::fatal(format!("snapshot {snapshot} not found in {src_region}")))?;
        let q = DbSnapshotQuery { snapshot_id: Some(target.into()), include_automated: false, ..Default::default() };
        let existing = c(cloud.rds.describe_db_snapshots(&region, &q)).await?.into_iter().next();
        let snap = match existing {
            Some(e) => {
                if e.source_arn.as_deref().is_some_and(|a| a != src.arn) {
                    return Err(ActionError::fatal(format!(
                        "snapshot {target} in {region} exists but was copied from {}, not {}; choose another target_id",
                        e.source_arn.unwrap_or_default(),
                        src.arn
                    )));
                }
                ctx.resource("found", "rds-snapshot", target, &region, &e.status);
                e
            }
            None => {
                ctx.resource("creating", "rds-snapshot", target, &region, "");
                let req = CopyDbSnapshot {
                    source_arn: src.arn.clone(),
                    source_region: src_region.clone(),
                    target_id: target.into(),
                    kms_key_id: p.opt_str("kms_key")?.map(str::to_string),
                    tags: ctx.tags(),
                };
                let snap = c(cloud.rds.copy_db_snapshot(&region, &req)).await?;
                ctx.resource("created", "rds-snapshot", target, &region, &snap.status);
                snap
            }
        };
        wait_state(ctx, "rds-snapshot", target, &region, POLL_SLOW, &["available"], &["failed", "error"], || async {
            match cloud.rds.poll_db_snapshot(&region, target).await? {
                Some(x) => Ok((x.status, Some(x.progress_pct))),
                None => Ok(("missing".into(), None)),
            }
        })
        .await?;
        // the size it copied, for the forecast's size scaling (`crate::forecast`)
        let size = serde_json::Value::from(src.storage_gib);
        Ok(outs(&[("id", s(snap.id)), ("arn", s(snap.arn)), ("size_gib", size)]))
    }
}

struct RestoreSnapshot;
static RESTORE_SNAPSHOT: ActionSpec = ActionSpec {
    name: "rds.restore_snapshot",
    summary: "Restore an RDS instance from a snapshot (skipped if the instance exists); wait until available",
    params: &[
        P::req("snapshot", K::Str, "the snapshot id or ARN, in `region`"),
        P::req("instance", K::Str, "the new instance id, e.g. ${vars.db}-dr"),
        P::opt("region", K::Region, "default: secondary"),
        P::opt("class", K::Str, "instance class, e.g. db.r6g.xlarge"),
        P::opt("subnet_group", K::Str, "DB subnet group"),
        P::opt("security_groups", K::StrList, "VPC security group ids"),
        P::opt("multi_az", K::Bool, "Multi-AZ (default false)"),
        P::opt("master_secret", K::Str, "Secrets Manager id of the master credentials to set after the restore"),
        P::opt(
            "reset_password",
            K::Bool,
            "set the master password again on an instance restored earlier (default false)",
        ),
    ],
    outputs: ENDPOINT_OUTPUTS,
    iam: &[
        "rds:RestoreDBInstanceFromDBSnapshot",
        "rds:DescribeDBInstances",
        "rds:DescribeDBSnapshots",
        "rds:ModifyDBInstance",
        "rds:AddTagsToResource",
        "secretsmanager:GetSecretValue",
        "kms:CreateGrant",
        "kms:DescribeKey",
    ],
    expected_secs: 1800,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for RestoreSnapshot {
    fn spec(&self) -> &'static ActionSpec {
        &RESTORE_SNAPSHOT
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "rds:RestoreDBInstanceFromDBSnapshot {} from {} in {} (class {}); wait until available",
            p.text("instance").unwrap_or_default(),
            p.text("snapshot").unwrap_or_default(),
            p.text("region").unwrap_or_else(|_| "secondary".into()),
            p.text("class").unwrap_or_else(|_| "as snapshot".into()),
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = region(ctx, p)?;
        let id = p.str("instance")?;
        let existing = find_existing(ctx, cloud, &region, id).await?;
        let created = existing.is_none();
        let mut known = existing;
        if created {
            ctx.resource("creating", "rds-instance", id, &region, "");
            let req = RestoreDbFromSnapshot {
                instance_id: id.into(),
                snapshot_id: p.str("snapshot")?.into(),
                class: p.opt_str("class")?.map(str::to_string),
                subnet_group: p.opt_str("subnet_group")?.map(str::to_string),
                security_groups: p.str_list("security_groups")?,
                multi_az: p.bool_or("multi_az", false)?,
                tags: ctx.tags(),
            };
            let d = c(cloud.rds.restore_db_from_snapshot(&region, &req)).await?;
            ctx.resource("created", "rds-instance", id, &region, &d.status);
            known = Some(d);
        }
        let d = wait_db_instance(ctx, cloud, &region, id, known).await?;
        // the master password is set once, by the run that restored the instance (an attempt of this run may have
        // restored it and stopped before the password), and again only when asked: a re-run changes nothing
        let restored_by_this_run = created || d.tags.get(crate::cloud::TAG_RUN_ID) == Some(&ctx.run_id);
        if restored_by_this_run || p.bool_or("reset_password", false)? {
            if let Some(pw) = master_password(ctx, cloud, &region, p).await? {
                let req = ModifyDbInstance {
                    instance_id: id.into(),
                    master_user_password: Some(pw),
                    apply_immediately: true,
                    ..Default::default()
                };
                let m = c(cloud.rds.modify_db_instance(&region, &req)).await?;
                ctx.resource("changed", "rds-instance", id, &region, "master credentials from Secrets Manager");
                // the modify's answer is the instance's state (a describe right after it answers the same): AWS
                // keeps it `available` while it resets the credentials, with no restart, so the endpoint serves on
                return Ok(db_outputs(&wait_db_instance(ctx, cloud, &region, id, Some(m)).await?));
            }
        } else if p.get("master_secret").is_some() {
            ctx.resource("found", "rds-instance", id, &region, "master credentials left as set at its restore");
        }
        Ok(db_outputs(&d))
    }
}

struct RestorePitr;
static RESTORE_PITR: ActionSpec = ActionSpec {
    name: "rds.restore_pitr",
    summary: "Restore an RDS instance to a point in time (refused outside the restorable window); wait until available",
    params: &[
        P::req("source", K::Str, "the source DB instance id"),
        P::req("instance", K::Str, "the new instance id, e.g. ${vars.db}-pitr"),
        P::opt("time", K::Time, "the time to restore to (default: the latest restorable time)"),
        P::opt("region", K::Region, "the source's region (default: primary)"),
        P::opt("class", K::Str, "instance class"),
        P::opt("subnet_group", K::Str, "DB subnet group"),
        P::opt("security_groups", K::StrList, "VPC security group ids"),
    ],
    outputs: &[
        out("instance", "the DB instance id"),
        out("arn", "the DB instance ARN"),
        out("endpoint", "the endpoint host name"),
        out("port", "the port"),
        out("restored_to", "the time restored to"),
    ],
    iam: &["rds:RestoreDBInstanceToPointInTime", "rds:DescribeDBInstances", "rds:AddTagsToResource", "kms:CreateGrant"],
    expected_secs: 2100,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for RestorePitr {
    fn spec(&self) -> &'static ActionSpec {
        &RESTORE_PITR
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "rds:RestoreDBInstanceToPointInTime {} → {} at {} in {}; wait until available",
            p.text("source").unwrap_or_default(),
            p.text("instance").unwrap_or_default(),
            p.text("time").unwrap_or_else(|_| "the latest restorable time".into()),
            p.text("region").unwrap_or_else(|_| "primary".into()),
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = p.opt_str("region")?.map_or_else(|| ctx.target.primary.clone(), str::to_string);
        let (source, id) = (p.str("source")?, p.str("instance")?);
        let time = match p.opt_str("time")? {
            None | Some("latest" | "") => None,
            Some(_) => p.opt_time("time")?,
        };
        let restored_to;
        if find_existing(ctx, cloud, &region, id).await?.is_none() {
            let w = c(cloud.rds.restore_window(&region, source)).await?;
            if let Some(t) = time
                && (t < w.earliest || t > w.latest)
            {
                return Err(ActionError::fatal(format!(
                    "refusing to restore {source} to {t}: outside its restorable window {} .. {}",
                    w.earliest, w.latest
                )));
            }
            restored_to = time.unwrap_or(w.latest);
            ctx.resource("creating", "rds-instance", id, &region, "");
            let req = RestoreDbToPointInTime {
                source_instance_id: source.into(),
                target_instance_id: id.into(),
                time,
                class: p.opt_str("class")?.map(str::to_string),
                subnet_group: p.opt_str("subnet_group")?.map(str::to_string),
                security_groups: p.str_list("security_groups")?,
                tags: ctx.tags(),
            };
            let d = c(cloud.rds.restore_db_to_point_in_time(&region, &req)).await?;
            ctx.resource("created", "rds-instance", id, &region, &d.status);
        } else {
            restored_to = time.unwrap_or_else(|| ctx.clock.now());
        }
        let mut o = wait_db(ctx, cloud, &region, id).await?;
        o.insert("restored_to".into(), s(restored_to.to_string()));
        Ok(o)
    }
}

struct Modify;
static MODIFY: ActionSpec = ActionSpec {
    name: "rds.modify",
    summary: "Modify an RDS instance (class, security groups, parameter group, master credentials from Secrets Manager)",
    params: &[
        P::req("instance", K::Str, "the DB instance id"),
        P::opt("region", K::Region, "default: secondary"),
        P::opt("class", K::Str, "new instance class"),
        P::opt("security_groups", K::StrList, "VPC security group ids"),
        P::opt("parameter_group", K::Str, "DB parameter group"),
        P::opt("master_secret", K::Str, "Secrets Manager id of the master credentials to set"),
    ],
    outputs: ENDPOINT_OUTPUTS,
    iam: &["rds:ModifyDBInstance", "rds:DescribeDBInstances", "secretsmanager:GetSecretValue"],
    expected_secs: 600,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for Modify {
    fn spec(&self) -> &'static ActionSpec {
        &MODIFY
    }
    fn plan(&self, p: &Params) -> String {
        let mut what = Vec::new();
        for k in ["class", "security_groups", "parameter_group", "master_secret"] {
            if let Some(v) = p.get(k) {
                what.push(format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string)));
            }
        }
        format!(
            "rds:ModifyDBInstance {} ({}) apply immediately; wait until available",
            p.text("instance").unwrap_or_default(),
            what.join(", ")
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = region(ctx, p)?;
        let id = p.str("instance")?;
        let cur = c(cloud.rds.describe_db_instance(&region, id))
            .await?
            .ok_or_else(|| ActionError::fatal(format!("DB instance {id} not found in {region}")))?;
        let class = p.opt_str("class")?.filter(|c| *c != cur.class).map(str::to_string);
        let sgs = Some(p.str_list("security_groups")?).filter(|v| !v.is_empty() && *v != cur.security_groups);
        let pg =
            p.opt_str("parameter_group")?.filter(|g| cur.parameter_group.as_deref() != Some(*g)).map(str::to_string);
        let pw = master_password(ctx, cloud, &region, p).await?;
        if class.is_none() && sgs.is_none() && pg.is_none() && pw.is_none() {
            ctx.resource("found", "rds-instance", id, &region, "already as requested");
            return wait_db(ctx, cloud, &region, id).await;
        }
        wait_db(ctx, cloud, &region, id).await?;
        let req = ModifyDbInstance {
            instance_id: id.into(),
            class,
            security_groups: sgs,
            parameter_group: pg,
            master_user_password: pw,
            apply_immediately: true,
        };
        let d = c(cloud.rds.modify_db_instance(&region, &req)).await?;
        ctx.resource("changed", "rds-instance", id, &region, &d.status);
        wait_db(ctx, cloud, &region, id).await
    }
}

struct WaitAvailable;
static WAIT_AVAILABLE: ActionSpec = ActionSpec {
    name: "rds.wait_available",
    summary: "Wait until an RDS instance is available; outputs its endpoint and port",
    params: &[P::req("instance", K::Str, "the DB instance id"), P::opt("region", K::Region, "default: secondary")],
    outputs: ENDPOINT_OUTPUTS,
    iam: &["rds:DescribeDBInstances"],
    expected_secs: 60,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for WaitAvailable {
    fn spec(&self) -> &'static ActionSpec {
        &WAIT_AVAILABLE
    }
    fn plan(&self, p: &Params) -> String {
        format!("poll rds:DescribeDBInstances {} until available", p.text("instance").unwrap_or_default())
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        wait_db(ctx, cloud, &region(ctx, p)?, p.str("instance")?).await
    }
}

struct BackupRestore;
static BACKUP_RESTORE: ActionSpec = ActionSpec {
    name: "backup.restore_rds",
    summary: "Restore an AWS Backup recovery point of an RDS database into a new instance; wait until completed",
    params: &[
        P::req("recovery_point", K::Str, "the recovery point ARN (in `region`)"),
        P::req("instance", K::Str, "the new DB instance id"),
        P::req("iam_role", K::Str, "the IAM role AWS Backup uses for the restore"),
        P::opt("region", K::Region, "default: secondary"),
        P::opt("class", K::Str, "instance class"),
    ],
    outputs: &[
        out("instance", "the DB instance id"),
        out("arn", "the DB instance ARN"),
        out("endpoint", "the endpoint host name"),
        out("port", "the port"),
        out("job_id", "the restore job"),
    ],
    iam: &["backup:StartRestoreJob", "backup:DescribeRestoreJob", "rds:DescribeDBInstances", "iam:PassRole"],
    expected_secs: 1800,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for BackupRestore {
    fn spec(&self) -> &'static ActionSpec {
        &BACKUP_RESTORE
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "backup:StartRestoreJob {} → RDS instance {} in {}; wait until COMPLETED",
            p.text("recovery_point").unwrap_or_default(),
            p.text("instance").unwrap_or_default(),
            p.text("region").unwrap_or_else(|_| "secondary".into())
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = region(ctx, p)?;
        let (rp, id) = (p.str("recovery_point")?, p.str("instance")?);
        let mut metadata = std::collections::BTreeMap::new();
        metadata.insert("DBInstanceIdentifier".to_string(), id.to_string());
        if let Some(cl) = p.opt_str("class")? {
            metadata.insert("DBInstanceClass".to_string(), cl.to_string());
        }
        let tok = token(&[rp, id, &region]);
        let existing = find_existing(ctx, cloud, &region, id).await?;
        // the idempotency token makes AWS Backup return the same job for the same request
        if existing.is_none() {
            ctx.resource("creating", "rds-instance", id, &region, "");
        }
        let req = StartRestoreJob {
            recovery_point_arn: rp.into(),
            iam_role_arn: p.str("iam_role")?.into(),
            resource_type: "RDS".into(),
            metadata,
            idempotency_token: tok,
        };
        let job = c(cloud.backup.start_restore_job(&region, &req)).await?;
        if existing.is_none() {
            ctx.resource("created", "backup-restore-job", &job, &region, "PENDING");
        }
        wait_state(
            ctx,
            "backup-restore-job",
            &job,
            &region,
            POLL_SLOW,
            &["COMPLETED"],
            &["FAILED", "ABORTED"],
            || async {
                let j = cloud.backup.describe_restore_job(&region, &job).await?;
                Ok((j.status, Some(j.percent)))
            },
        )
        .await?;
        let mut o = wait_db(ctx, cloud, &region, id).await?;
        o.insert("job_id".into(), s(job));
        Ok(o)
    }
}

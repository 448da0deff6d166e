//! RDS: instances, snapshots (cross-region copies), restores from snapshot and to a point in time, exports.
//!
//! Creates are idempotent by name: RDS identifiers are unique per account and region, so a create that finds the
//! identifier taken (a retried call whose first answer was lost, or a re-run) describes and returns what exists.
//! They do not look first: the actions look for the identifier before they create, and one lookup per step is
//! enough.

use async_trait::async_trait;
use aws_sdk_rds::types::{DbInstance as SdkDbInstance, DbSnapshot as SdkDbSnapshot, ExportTask as SdkExportTask, Tag};

use super::convert::{opt_ts, pct, tags, to_dt, ts, u64_of};
use super::error::from_sdk;
use super::{Aws, wait};
use crate::cloud::{
    CloudError, CloudResult, CopyDbSnapshot, DbInstance, DbSnapshot, DbSnapshotQuery, DbSubnetGroup, ExportTask,
    ModifyDbInstance, Rds, RestoreDbFromSnapshot, RestoreDbToPointInTime, RestoreWindow, StartExportTask, Tags,
};

const SVC: &str = "rds";

fn sdk_tags(t: &Tags) -> Vec<Tag> {
    t.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn port_tags(t: &[Tag]) -> Tags {
    tags(t.iter().map(|t| (t.key(), t.value())))
}

pub(crate) fn instance(d: &SdkDbInstance) -> DbInstance {
    DbInstance {
        id: d.db_instance_identifier().unwrap_or_default().to_string(),
        arn: d.db_instance_arn().unwrap_or_default().to_string(),
        engine: d.engine().unwrap_or_default().to_string(),
        class: d.db_instance_class().unwrap_or_default().to_string(),
        status: d.db_instance_status().unwrap_or_default().to_string(),
        endpoint: d.endpoint().and_then(|e| e.address()).map(str::to_string),
        port: d.endpoint().and_then(|e| e.port()).and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
        storage_gib: u64_of(d.allocated_storage()),
        encrypted: d.storage_encrypted().unwrap_or(false),
        kms_key_id: d.kms_key_id().map(str::to_string),
        az: d.availability_zone().map(str::to_string),
        subnet_group: d.db_subnet_group().and_then(|g| g.db_subnet_group_name()).map(str::to_string),
        security_groups: d
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id())
            .map(str::to_string)
            .collect(),
        parameter_group: d.db_parameter_groups().first().and_then(|g| g.db_parameter_group_name()).map(str::to_string),
        earliest_restorable_time: None,
        latest_restorable_time: opt_ts(d.latest_restorable_time()),
        tags: port_tags(d.tag_list()),
    }
}

pub(crate) fn snapshot(s: &SdkDbSnapshot) -> DbSnapshot {
    DbSnapshot {
        id: s.db_snapshot_identifier().unwrap_or_default().to_string(),
        arn: s.db_snapshot_arn().unwrap_or_default().to_string(),
        instance_id: s.db_instance_identifier().unwrap_or_default().to_string(),
        snapshot_type: s.snapshot_type().unwrap_or_default().to_string(),
        status: s.status().unwrap_or_default().to_string(),
        progress_pct: pct(s.percent_progress()),
        // a copy's data is as old as its source: OriginalSnapshotCreateTime (set on copies, and equal to
        // SnapshotCreateTime on an original), never the copy's own SnapshotCreateTime
        created: ts(s.original_snapshot_create_time().or(s.snapshot_create_time())),
        engine: s.engine().unwrap_or_default().to_string(),
        storage_gib: u64_of(s.allocated_storage()),
        encrypted: s.encrypted().unwrap_or(false),
        kms_key_id: s.kms_key_id().map(str::to_string),
        source_arn: s.source_db_snapshot_identifier().map(str::to_string),
        tags: port_tags(s.tag_list()),
    }
}

fn export(t: &SdkExportTask) -> ExportTask {
    ExportTask {
        id: t.export_task_identifier().unwrap_or_default().to_string(),
        source_arn: t.source_arn().unwrap_or_default().to_string(),
        status: t.status().unwrap_or_default().to_string(),
        percent: pct(t.percent_progress()),
        bucket: t.s3_bucket().unwrap_or_default().to_string(),
        prefix: t.s3_prefix().unwrap_or_default().to_string(),
    }
}

/// An RDS filter `name` with these values.
fn id_filter(name: &str, ids: Vec<String>) -> aws_sdk_rds::types::Filter {
    aws_sdk_rds::types::Filter::builder().name(name).set_values(Some(ids)).build()
}

fn already_exists(e: &CloudError) -> bool {
    e.code.ends_with("AlreadyExists") || e.code.ends_with("AlreadyExistsFault")
}

impl Aws {
    async fn db_snapshot_by_id(&self, region: &str, id: &str) -> CloudResult<Option<DbSnapshot>> {
        let q = DbSnapshotQuery { snapshot_id: Some(id.to_string()), include_automated: true, ..Default::default() };
        Ok(self.describe_db_snapshots(region, &q).await?.into_iter().next())
    }

    /// The instance just created or restored: describe it (briefly retrying read-after-create not-found).
    async fn created_instance(&self, region: &str, id: &str, op: &str) -> CloudResult<DbInstance> {
        wait::consistent(5, || async {
            self.describe_db_instance(region, id).await?.ok_or_else(|| {
                CloudError::new(SVC, op, region, "DBInstanceNotFound", format!("{id} not visible yet")).not_found()
            })
        })
        .await
    }
}

#[async_trait]
impl Rds for Aws {
    async fn describe_db_instance(&self, region: &str, id: &str) -> CloudResult<Option<DbInstance>> {
        let r = self.clients.rds(region).describe_db_instances().db_instance_identifier(id).send().await;
        match r {
            Ok(out) => Ok(out.db_instances().first().map(instance)),
            Err(e) => {
                let e = from_sdk(SVC, "DescribeDBInstances", region, e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    /// Batched ([`crate::cloud::batch`]): one DescribeDBInstances with the filter `db-instance-id` for every
    /// instance being waited for in the region (up to 100 values a call); an id absent from the answer is not found.
    async fn poll_db_instance(&self, region: &str, id: &str) -> CloudResult<Option<DbInstance>> {
        const OP: &str = "DescribeDBInstances";
        self.clients
            .polls
            .db_instances
            .poll(region, id, |ids| async move {
                let f = id_filter("db-instance-id", ids);
                let r: Result<Vec<_>, _> = self
                    .clients
                    .rds(region)
                    .describe_db_instances()
                    .filters(f)
                    .into_paginator()
                    .items()
                    .send()
                    .collect()
                    .await;
                let v = r.map_err(|e| from_sdk(SVC, OP, region, e))?;
                Ok(v.iter().map(instance).map(|d| (d.id.clone(), d)).collect())
            })
            .await
    }

    /// Batched as [`Rds::poll_db_instance`] is: one DescribeDBSnapshots with the filter `db-snapshot-id` (manual
    /// snapshots) for every snapshot being waited for in the region.
    async fn poll_db_snapshot(&self, region: &str, id: &str) -> CloudResult<Option<DbSnapshot>> {
        const OP: &str = "DescribeDBSnapshots";
        self.clients
            .polls
            .db_snapshots
            .poll(region, id, |ids| async move {
                let f = id_filter("db-snapshot-id", ids);
                let r: Result<Vec<_>, _> = self
                    .clients
                    .rds(region)
                    .describe_db_snapshots()
                    .snapshot_type("manual")
                    .filters(f)
                    .into_paginator()
                    .items()
                    .send()
                    .collect()
                    .await;
                let v = r.map_err(|e| from_sdk(SVC, OP, region, e))?;
                Ok(v.iter().map(snapshot).map(|s| (s.id.clone(), s)).collect())
            })
            .await
    }

    async fn describe_db_snapshots(&self, region: &str, q: &DbSnapshotQuery) -> CloudResult<Vec<DbSnapshot>> {
        let mut req = self.clients.rds(region).describe_db_snapshots();
        if let Some(i) = &q.instance_id {
            req = req.db_instance_identifier(i);
        }
        if let Some(s) = &q.snapshot_id {
            req = req.db_snapshot_identifier(s);
        }
        if q.snapshot_id.as_deref().is_some_and(|s| s.starts_with("awsbackup:") || s.contains(":snapshot:awsbackup:")) {
            // a snapshot AWS Backup keeps (a recovery point): listed only when its type is asked for
            req = req.snapshot_type("awsbackup");
        } else if !q.include_automated {
            req = req.snapshot_type("manual");
        }
        let pages: Result<Vec<_>, _> = req.into_paginator().items().send().collect().await;
        match pages {
            Ok(v) => Ok(v.iter().map(snapshot).collect()),
            Err(e) => {
                let e = from_sdk(SVC, "DescribeDBSnapshots", region, e);
                if e.is_not_found() { Ok(Vec::new()) } else { Err(e) }
            }
        }
    }

    async fn restore_window(&self, region: &str, instance_id: &str) -> CloudResult<RestoreWindow> {
        let inst = self.clients.rds(region).describe_db_instances().db_instance_identifier(instance_id).send().await;
        let inst = inst.map_err(|e| from_sdk(SVC, "DescribeDBInstances", region, e))?;
        let Some(d) = inst.db_instances().first() else {
            return Err(
                CloudError::new(SVC, "DescribeDBInstances", region, "DBInstanceNotFound", instance_id).not_found()
            );
        };
        let latest = opt_ts(d.latest_restorable_time()).ok_or_else(|| {
            CloudError::new(
                SVC,
                "DescribeDBInstances",
                region,
                "NoRestorableTime",
                format!(
                    "{instance_id} has no LatestRestorableTime: automated backups are off (BackupRetentionPeriod 0)"
                ),
            )
        })?;
        // the earliest time is on the automated backup; without one, the retention period bounds it
        let backups = self
            .clients
            .rds(region)
            .describe_db_instance_automated_backups()
            .db_instance_identifier(instance_id)
            .send()
            .await;
        let from_backup = backups
            .ok()
            .and_then(|b| b.db_instance_automated_backups().first().and_then(|b| b.restore_window().cloned()))
            .and_then(|w| opt_ts(w.earliest_time()));
        let retention =
            jiff::SignedDuration::from_hours(24 * i64::from(d.backup_retention_period().unwrap_or(1).max(1)));
        let by_retention = latest.saturating_sub(retention).unwrap_or(latest);
        let created = opt_ts(d.instance_create_time()).unwrap_or(by_retention);
        let earliest = from_backup.unwrap_or_else(|| by_retention.max(created));
        Ok(RestoreWindow { earliest, latest })
    }

    async fn copy_db_snapshot(&self, region: &str, req: &CopyDbSnapshot) -> CloudResult<DbSnapshot> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.clients.polls.db_snapshots.changing(region, &[req.target_id.as_str()]);
        // no lookup first: the caller looked for the target id (rds.copy_snapshot does), and a taken id answers
        // DBSnapshotAlreadyExists, which returns what exists
        self.allow_change(SVC, "CopyDBSnapshot", region).await?;
        // called in the target region with the source's ARN; the Rust SDK has no SourceRegion/PreSignedUrl
        // customization, and AWS needs a pre-signed URL only between GovCloud regions
        let mut call = self
            .clients
            .rds(region)
            .copy_db_snapshot()
            .source_db_snapshot_identifier(&req.source_arn)
            .target_db_snapshot_identifier(&req.target_id)
            .set_tags(Some(sdk_tags(&req.tags)));
        if let Some(k) = &req.kms_key_id {
            call = call.kms_key_id(k);
        }
        match call.send().await {
            Ok(out) => out.db_snapshot().map(snapshot).ok_or_else(|| {
                CloudError::new(SVC, "CopyDBSnapshot", region, "EmptyResponse", "no DBSnapshot in the answer")
            }),
            Err(e) => {
                let e = from_sdk(SVC, "CopyDBSnapshot", region, e);
                if already_exists(&e)
                    && let Some(s) = self.db_snapshot_by_id(region, &req.target_id).await?
                {
                    return Ok(s);
                }
                Err(e)
            }
        }
    }

    async fn restore_db_from_snapshot(&self, region: &str, req: &RestoreDbFromSnapshot) -> CloudResult<DbInstance> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.clients.polls.db_instances.changing(region, &[req.instance_id.as_str()]);
        const OP: &str = "RestoreDBInstanceFromDBSnapshot";
        // no lookup first: the caller looked for the instance id, and a taken id answers DBInstanceAlreadyExists
        self.allow_change(SVC, OP, region).await?;
        let call = self
            .clients
            .rds(region)
            .restore_db_instance_from_db_snapshot()
            .db_instance_identifier(&req.instance_id)
            .db_snapshot_identifier(&req.snapshot_id)
            .set_db_instance_class(req.class.clone())
            .set_db_subnet_group_name(req.subnet_group.clone())
            .set_vpc_security_group_ids((!req.security_groups.is_empty()).then(|| req.security_groups.clone()))
            .multi_az(req.multi_az)
            .copy_tags_to_snapshot(true)
            .set_tags(Some(sdk_tags(&req.tags)));
        match call.send().await {
            Ok(out) => match out.db_instance() {
                Some(d) => Ok(instance(d)),
                None => self.created_instance(region, &req.instance_id, OP).await,
            },
            Err(e) => {
                let e = from_sdk(SVC, OP, region, e);
                if already_exists(&e) { self.created_instance(region, &req.instance_id, OP).await } else { Err(e) }
            }
        }
    }

    async fn restore_db_to_point_in_time(&self, region: &str, req: &RestoreDbToPointInTime) -> CloudResult<DbInstance> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.clients.polls.db_instances.changing(region, &[req.target_instance_id.as_str()]);
        const OP: &str = "RestoreDBInstanceToPointInTime";
        self.allow_change(SVC, OP, region).await?;
        let mut call = self
            .clients
            .rds(region)
            .restore_db_instance_to_point_in_time()
            .source_db_instance_identifier(&req.source_instance_id)
            .target_db_instance_identifier(&req.target_instance_id)
            .set_db_instance_class(req.class.clone())
            .set_db_subnet_group_name(req.subnet_group.clone())
            .set_vpc_security_group_ids((!req.security_groups.is_empty()).then(|| req.security_groups.clone()))
            .copy_tags_to_snapshot(true)
            .set_tags(Some(sdk_tags(&req.tags)));
        call = match req.time {
            Some(t) => call.restore_time(to_dt(t)),
            None => call.use_latest_restorable_time(true),
        };
        match call.send().await {
            Ok(out) => match out.db_instance() {
                Some(d) => Ok(instance(d)),
                None => self.created_instance(region, &req.target_instance_id, OP).await,
            },
            Err(e) => {
                let e = from_sdk(SVC, OP, region, e);
                if already_exists(&e) {
                    self.created_instance(region, &req.target_instance_id, OP).await
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn modify_db_instance(&self, region: &str, req: &ModifyDbInstance) -> CloudResult<DbInstance> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.clients.polls.db_instances.changing(region, &[req.instance_id.as_str()]);
        const OP: &str = "ModifyDBInstance";
        self.allow_change(SVC, OP, region).await?;
        let out = self
            .clients
            .rds(region)
            .modify_db_instance()
            .db_instance_identifier(&req.instance_id)
            .set_db_instance_class(req.class.clone())
            .set_vpc_security_group_ids(req.security_groups.clone())
            .set_db_parameter_group_name(req.parameter_group.clone())
            .set_master_user_password(req.master_user_password.clone())
            .apply_immediately(req.apply_immediately)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        match out.db_instance() {
            Some(d) => Ok(instance(d)),
            None => self.created_instance(region, &req.instance_id, OP).await,
        }
    }

    async fn start_export_task(&self, region: &str, req: &StartExportTask) -> CloudResult<ExportTask> {
        const OP: &str = "StartExportTask";
        if let Some(t) = self.describe_export_task(region, &req.id).await? {
            return Ok(t);
        }
        self.allow_change(SVC, OP, region).await?;
        let out = self
            .clients
            .rds(region)
            .start_export_task()
            .export_task_identifier(&req.id)
            .source_arn(&req.source_arn)
            .s3_bucket_name(&req.bucket)
            .s3_prefix(&req.prefix)
            .iam_role_arn(&req.iam_role_arn)
            .kms_key_id(&req.kms_key_id)
            .send()
            .await;
        match out {
            Ok(o) => Ok(ExportTask {
                id: o.export_task_identifier().unwrap_or(&req.id).to_string(),
                source_arn: o.source_arn().unwrap_or(&req.source_arn).to_string(),
                status: o.status().unwrap_or("STARTING").to_string(),
                percent: pct(o.percent_progress()),
                bucket: o.s3_bucket().unwrap_or(&req.bucket).to_string(),
                prefix: o.s3_prefix().unwrap_or(&req.prefix).to_string(),
            }),
            Err(e) => {
                let e = from_sdk(SVC, OP, region, e);
                if already_exists(&e)
                    && let Some(t) = self.describe_export_task(region, &req.id).await?
                {
                    return Ok(t);
                }
                Err(e)
            }
        }
    }

    async fn describe_export_task(&self, region: &str, id: &str) -> CloudResult<Option<ExportTask>> {
        let r = self.clients.rds(region).describe_export_tasks().export_task_identifier(id).send().await;
        match r {
            Ok(out) => Ok(out.export_tasks().first().map(export)),
            Err(e) => {
                let e = from_sdk(SVC, "DescribeExportTasks", region, e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    async fn describe_db_subnet_group(&self, region: &str, name: &str) -> CloudResult<Option<DbSubnetGroup>> {
        let r = self.clients.rds(region).describe_db_subnet_groups().db_subnet_group_name(name).send().await;
        match r {
            Ok(out) => Ok(out.db_subnet_groups().first().map(|g| DbSubnetGroup {
                name: g.db_subnet_group_name().unwrap_or(name).to_string(),
                vpc_id: g.vpc_id().unwrap_or_default().to_string(),
                subnets: g
                    .subnets()
                    .iter()
                    .map(|s| {
                        (
                            s.subnet_identifier().unwrap_or_default().to_string(),
                            s.subnet_availability_zone().and_then(|a| a.name()).unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
            })),
            Err(e) => {
                let e = from_sdk(SVC, "DescribeDBSubnetGroups", region, e);
                if e.is_not_found() || e.code == "DBSubnetGroupNotFoundFault" { Ok(None) } else { Err(e) }
            }
        }
    }
}

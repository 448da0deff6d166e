//! RDS in the simulator: instances restored from snapshots or to a point in time, snapshots and their
//! cross-region copies, with states computed from timelines at `now`.

use std::time::Duration;

use async_trait::async_trait;

use super::{Sim, Timed, Timeline, World, bad, nf};
use crate::cloud::*;

fn db_view(d: &Timed<DbInstance>, now: jiff::Timestamp, stopped: Duration) -> DbInstance {
    let mut x = d.item.clone();
    x.status = d.tl.state(now);
    if x.status == "available" || x.status == "backing-up" || x.status == "modifying" {
        x.latest_restorable_time = Some(super::sub(now, Duration::from_secs(300) + stopped));
    } else {
        x.endpoint = None;
    }
    x
}

fn snap_view(s: &Timed<DbSnapshot>, now: jiff::Timestamp) -> DbSnapshot {
    let mut x = s.item.clone();
    x.status = s.tl.state(now);
    x.progress_pct = s.tl.percent(now);
    x
}

/// RDS restore: creating (most of it) → backing-up → available; grows with storage.
pub(super) fn restore_timeline(
    w: &World,
    now: jiff::Timestamp,
    storage_gib: u64,
    key: &str,
    extra_secs: f64,
) -> Timeline {
    let total = w.dur(600.0 + storage_gib as f64 * 1.2 + extra_secs, key);
    Timeline::steps(now, &[("creating", total.mul_f64(0.8)), ("backing-up", total.mul_f64(0.2))], "available")
}

#[async_trait]
impl Rds for Sim {
    async fn describe_db_instance(&self, region: &str, id: &str) -> CloudResult<Option<DbInstance>> {
        self.call("rds", "DescribeDBInstances", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let stopped = w.settings.backups_stopped;
        // a deleted instance is gone (it was `deleting` until then)
        Ok(w.now_region(region).dbs.get(id).map(|d| db_view(d, now, stopped)).filter(|d| d.status != "deleted"))
    }

    /// Batched ([`crate::cloud::batch`]): one DescribeDBInstances (filter `db-instance-id`) for every instance
    /// being waited for in the region.
    async fn poll_db_instance(&self, region: &str, id: &str) -> CloudResult<Option<DbInstance>> {
        self.polls
            .db_instances
            .poll(region, id, |ids| async move {
                self.call("rds", "DescribeDBInstances", region).await?;
                let now = self.clock.now();
                let mut w = self.lock();
                let stopped = w.settings.backups_stopped;
                let dbs = &w.now_region(region).dbs;
                Ok(ids
                    .iter()
                    .filter_map(|i| dbs.get(i).map(|d| (i.clone(), db_view(d, now, stopped))))
                    .filter(|(_, d)| d.status != "deleted")
                    .collect())
            })
            .await
    }

    /// Batched as [`Rds::poll_db_instance`] is: one DescribeDBSnapshots (filter `db-snapshot-id`, manual ones).
    async fn poll_db_snapshot(&self, region: &str, id: &str) -> CloudResult<Option<DbSnapshot>> {
        self.polls
            .db_snapshots
            .poll(region, id, |ids| async move {
                self.call("rds", "DescribeDBSnapshots", region).await?;
                let now = self.clock.now();
                let mut w = self.lock();
                let snaps = &w.now_region(region).db_snapshots;
                Ok(ids
                    .iter()
                    .filter_map(|i| {
                        snaps
                            .values()
                            .find(|s| {
                                s.tl.start() <= now
                                    && s.item.snapshot_type == "manual"
                                    && (s.item.id == *i || s.item.arn == *i)
                            })
                            .map(|s| (i.clone(), snap_view(s, now)))
                    })
                    .collect())
            })
            .await
    }

    async fn describe_db_snapshots(&self, region: &str, q: &DbSnapshotQuery) -> CloudResult<Vec<DbSnapshot>> {
        self.call("rds", "DescribeDBSnapshots", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let mut v: Vec<DbSnapshot> = w
            .now_region(region)
            .db_snapshots
            .values()
            .filter(|s| s.tl.start() <= now)
            .filter(|s| q.instance_id.as_ref().is_none_or(|i| *i == s.item.instance_id))
            .filter(|s| q.snapshot_id.as_ref().is_none_or(|i| *i == s.item.id || *i == s.item.arn))
            .filter(|s| q.include_automated || s.item.snapshot_type == "manual")
            .map(|s| snap_view(s, now))
            .collect();
        v.sort_by_key(|a| std::cmp::Reverse(a.created));
        Ok(v)
    }

    async fn restore_window(&self, region: &str, instance_id: &str) -> CloudResult<RestoreWindow> {
        self.call("rds", "DescribeDBInstances", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let stopped = w.settings.backups_stopped;
        let d = w.now_region(region).dbs.get(instance_id).map(|d| db_view(d, now, stopped)).ok_or_else(|| {
            nf(
                "rds",
                "DescribeDBInstances",
                region,
                "DBInstanceNotFound",
                format!("DBInstance {instance_id} not found"),
            )
        })?;
        match (d.earliest_restorable_time, d.latest_restorable_time) {
            (Some(earliest), Some(latest)) => Ok(RestoreWindow { earliest, latest }),
            _ => Err(bad(
                "rds",
                "DescribeDBInstances",
                region,
                "InvalidDBInstanceState",
                format!("DBInstance {instance_id} has no point-in-time window (status {})", d.status),
            )),
        }
    }

    async fn copy_db_snapshot(&self, region: &str, req: &CopyDbSnapshot) -> CloudResult<DbSnapshot> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.polls.db_snapshots.changing(region, &[req.target_id.as_str()]);
        let op = "CopyDBSnapshot";
        self.call("rds", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        if let Some(s) = w.now_region(region).db_snapshots.get(&req.target_id) {
            return Err(bad(
                "rds",
                op,
                region,
                "DBSnapshotAlreadyExists",
                format!(
                    "Cannot create the snapshot because a snapshot with the identifier {} already exists",
                    s.item.id
                ),
            ));
        }
        let src = w
            .now_region(&req.source_region)
            .db_snapshots
            .values()
            .find(|s| s.item.arn == req.source_arn || s.item.id == req.source_arn)
            .map(|s| snap_view(s, now))
            .ok_or_else(|| {
                nf(
                    "rds",
                    op,
                    region,
                    "DBSnapshotNotFound",
                    format!("DBSnapshot {} not found in {}", req.source_arn, req.source_region),
                )
            })?;
        if src.status != "available" {
            return Err(bad(
                "rds",
                op,
                region,
                "InvalidDBSnapshotState",
                format!("DBSnapshot {} is {}", src.id, src.status),
            ));
        }
        let cross = req.source_region != region;
        if cross && src.encrypted && req.kms_key_id.is_none() {
            return Err(bad(
                "rds",
                op,
                region,
                "InvalidParameterCombination",
                "KmsKeyId must be specified to copy an encrypted snapshot to another region".into(),
            ));
        }
        let secs = if cross { 300.0 + src.storage_gib as f64 * 0.6 } else { 60.0 + src.storage_gib as f64 * 0.05 };
        let total = w.dur(secs, &format!("copy/{region}/{}", req.target_id));
        let tl = Timeline::steps(now, &[("pending", total)], "available");
        let snap = DbSnapshot {
            id: req.target_id.clone(),
            arn: w.arn("rds", region, &format!("snapshot:{}", req.target_id)),
            instance_id: src.instance_id.clone(),
            snapshot_type: "manual".into(),
            status: "pending".into(),
            progress_pct: 0,
            created: src.created,
            engine: src.engine.clone(),
            storage_gib: src.storage_gib,
            encrypted: src.encrypted,
            kms_key_id: req.kms_key_id.clone().or(src.kms_key_id.clone()),
            source_arn: Some(src.arn.clone()),
            tags: req.tags.clone(),
        };
        let t = Timed { item: snap, tl };
        let view = snap_view(&t, now);
        w.now_region(region).db_snapshots.insert(req.target_id.clone(), t);
        Ok(view)
    }

    async fn restore_db_from_snapshot(&self, region: &str, req: &RestoreDbFromSnapshot) -> CloudResult<DbInstance> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.polls.db_instances.changing(region, &[req.instance_id.as_str()]);
        let op = "RestoreDBInstanceFromDBSnapshot";
        self.call("rds", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        if w.now_region(region).dbs.contains_key(&req.instance_id) {
            return Err(bad(
                "rds",
                op,
                region,
                "DBInstanceAlreadyExists",
                format!("DB instance {} already exists", req.instance_id),
            ));
        }
        let snap = w
            .now_region(region)
            .db_snapshots
            .values()
            .find(|s| s.item.id == req.snapshot_id || s.item.arn == req.snapshot_id)
            .map(|s| snap_view(s, now))
            .ok_or_else(|| {
                nf("rds", op, region, "DBSnapshotNotFound", format!("DBSnapshot {} not found", req.snapshot_id))
            })?;
        if snap.status != "available" {
            return Err(bad(
                "rds",
                op,
                region,
                "InvalidDBSnapshotState",
                format!("DBSnapshot {} is {}", snap.id, snap.status),
            ));
        }
        let tl = restore_timeline(&w, now, snap.storage_gib, &format!("restore/{region}/{}", req.instance_id), 0.0);
        let db = new_db(
            &w,
            region,
            &req.instance_id,
            &snap,
            req.class.clone(),
            req.subnet_group.clone(),
            &req.security_groups,
            &req.tags,
            now,
        );
        let t = Timed { item: db, tl };
        let stopped = w.settings.backups_stopped;
        let view = db_view(&t, now, stopped);
        w.now_region(region).dbs.insert(req.instance_id.clone(), t);
        Ok(view)
    }

    async fn restore_db_to_point_in_time(&self, region: &str, req: &RestoreDbToPointInTime) -> CloudResult<DbInstance> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.polls.db_instances.changing(region, &[req.target_instance_id.as_str()]);
        let op = "RestoreDBInstanceToPointInTime";
        self.call("rds", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let stopped = w.settings.backups_stopped;
        if w.now_region(region).dbs.contains_key(&req.target_instance_id) {
            return Err(bad(
                "rds",
                op,
                region,
                "DBInstanceAlreadyExists",
                format!("DB instance {} already exists", req.target_instance_id),
            ));
        }
        let src = w.now_region(region).dbs.get(&req.source_instance_id).map(|d| db_view(d, now, stopped)).ok_or_else(
            || nf("rds", op, region, "DBInstanceNotFound", format!("DBInstance {} not found", req.source_instance_id)),
        )?;
        let (Some(earliest), Some(latest)) = (src.earliest_restorable_time, src.latest_restorable_time) else {
            return Err(bad(
                "rds",
                op,
                region,
                "InvalidDBInstanceState",
                format!("DBInstance {} is {}", src.id, src.status),
            ));
        };
        if let Some(t) = req.time
            && (t < earliest || t > latest)
        {
            return Err(bad(
                "rds",
                op,
                region,
                "InvalidRestoreFault",
                format!("restore time {t} is outside the restorable window {earliest} .. {latest}"),
            ));
        }
        let snap = DbSnapshot {
            id: String::new(),
            arn: String::new(),
            instance_id: src.id.clone(),
            snapshot_type: "pitr".into(),
            status: "available".into(),
            progress_pct: 100,
            created: req.time.unwrap_or(latest),
            engine: src.engine.clone(),
            storage_gib: src.storage_gib,
            encrypted: src.encrypted,
            kms_key_id: src.kms_key_id.clone(),
            source_arn: None,
            tags: Tags::new(),
        };
        // replaying the logs adds time
        let tl =
            restore_timeline(&w, now, src.storage_gib, &format!("pitr/{region}/{}", req.target_instance_id), 300.0);
        let db = new_db(
            &w,
            region,
            &req.target_instance_id,
            &snap,
            req.class.clone(),
            req.subnet_group.clone(),
            &req.security_groups,
            &req.tags,
            now,
        );
        let t = Timed { item: db, tl };
        let view = db_view(&t, now, stopped);
        w.now_region(region).dbs.insert(req.target_instance_id.clone(), t);
        Ok(view)
    }

    async fn modify_db_instance(&self, region: &str, req: &ModifyDbInstance) -> CloudResult<DbInstance> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.polls.db_instances.changing(region, &[req.instance_id.as_str()]);
        let op = "ModifyDBInstance";
        self.call("rds", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let stopped = w.settings.backups_stopped;
        let d = w.dur(if req.class.is_some() { 600.0 } else { 60.0 }, &format!("modify/{region}/{}", req.instance_id));
        let r = w.now_region(region);
        let db = r.dbs.get_mut(&req.instance_id).ok_or_else(|| {
            nf("rds", op, region, "DBInstanceNotFound", format!("DBInstance {} not found", req.instance_id))
        })?;
        let state = db.tl.state(now);
        if state != "available" {
            return Err(bad(
                "rds",
                op,
                region,
                "InvalidDBInstanceState",
                format!("DB instance {} is {state}, not available", req.instance_id),
            )
            .retryable());
        }
        if let Some(c) = &req.class {
            db.item.class.clone_from(c);
        }
        if let Some(s) = &req.security_groups {
            db.item.security_groups.clone_from(s);
        }
        if let Some(p) = &req.parameter_group {
            db.item.parameter_group = Some(p.clone());
        }
        db.tl.then(now, &[("modifying", d)], "available");
        Ok(db_view(db, now, stopped))
    }

    async fn start_export_task(&self, region: &str, req: &StartExportTask) -> CloudResult<ExportTask> {
        let op = "StartExportTask";
        self.call("rds", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        if w.now_region(region).export_tasks.contains_key(&req.id) {
            return Err(bad(
                "rds",
                op,
                region,
                "ExportTaskAlreadyExists",
                format!("export task {} already exists", req.id),
            ));
        }
        let d = w.dur(1800.0, &format!("export/{}", req.id));
        let tl = Timeline::steps(now, &[("STARTING", Duration::from_secs(120)), ("IN_PROGRESS", d)], "COMPLETE");
        let t = ExportTask {
            id: req.id.clone(),
            source_arn: req.source_arn.clone(),
            status: "STARTING".into(),
            percent: 0,
            bucket: req.bucket.clone(),
            prefix: req.prefix.clone(),
        };
        w.now_region(region).export_tasks.insert(req.id.clone(), Timed { item: t.clone(), tl });
        Ok(t)
    }

    async fn describe_export_task(&self, region: &str, id: &str) -> CloudResult<Option<ExportTask>> {
        self.call("rds", "DescribeExportTasks", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region).export_tasks.get(id).map(|t| {
            let mut x = t.item.clone();
            x.status = t.tl.state(now);
            x.percent = t.tl.percent(now);
            x
        }))
    }

    /// A subnet group asked for exists in the region's first VPC, over its private subnets, unless the world file
    /// lists it in `missing_db_subnet_groups` (or the region has no VPC).
    async fn describe_db_subnet_group(&self, region: &str, name: &str) -> CloudResult<Option<DbSubnetGroup>> {
        self.call("rds", "DescribeDBSubnetGroups", region).await?;
        let mut w = self.lock();
        if w.settings.missing_db_subnet_groups.iter().any(|m| m == name) {
            return Ok(None);
        }
        let r = w.now_region(region);
        let Some(vpc) = r.vpcs.values().next().map(|v| v.id.clone()) else { return Ok(None) };
        let subnets =
            r.subnets.values().filter(|s| s.vpc_id == vpc && !s.public).map(|s| (s.id.clone(), s.az.clone())).collect();
        Ok(Some(DbSubnetGroup { name: name.to_string(), vpc_id: vpc, subnets }))
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn new_db(
    w: &World,
    region: &str,
    id: &str,
    snap: &DbSnapshot,
    class: Option<String>,
    subnet_group: Option<String>,
    sgs: &[String],
    tags: &Tags,
    _now: jiff::Timestamp,
) -> DbInstance {
    DbInstance {
        id: id.into(),
        arn: w.arn("rds", region, &format!("db:{id}")),
        engine: snap.engine.clone(),
        class: class.unwrap_or_else(|| "db.r6g.xlarge".into()),
        status: "creating".into(),
        endpoint: Some(format!("{id}.c0sim.{region}.rds.amazonaws.com")),
        port: if snap.engine.contains("mysql") { 3306 } else { 5432 },
        storage_gib: snap.storage_gib,
        encrypted: snap.encrypted,
        kms_key_id: snap.kms_key_id.clone(),
        az: Some(format!("{region}a")),
        subnet_group,
        security_groups: sgs.to_vec(),
        parameter_group: Some(format!("default.{}", snap.engine)),
        earliest_restorable_time: None,
        latest_restorable_time: None,
        tags: tags.clone(),
    }
}

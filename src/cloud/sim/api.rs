//! The port traits on the simulated world. Every method: count the call, apply latency/outage/faults
//! ([`Sim::call`]), then read or change the world under its lock, with states computed from timelines at `now`.

use std::time::Duration;

use async_trait::async_trait;

use super::provision::fqdn;
use super::{Sim, SimAsgInstance, SimImport, SimTarget, Timed, Timeline, World, add};
use crate::cloud::*;

fn nf(service: &str, op: &str, region: &str, code: &str, what: String) -> CloudError {
    CloudError::new(service, op, region, code, what).not_found()
}

fn bad(service: &str, op: &str, region: &str, code: &str, what: String) -> CloudError {
    CloudError::new(service, op, region, code, what)
}

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
fn restore_timeline(w: &World, now: jiff::Timestamp, storage_gib: u64, key: &str, extra_secs: f64) -> Timeline {
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
}

#[allow(clippy::too_many_arguments)]
fn new_db(
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

fn vol_view(v: &Timed<Volume>, now: jiff::Timestamp) -> Volume {
    let mut x = v.item.clone();
    x.state = v.tl.state(now);
    for a in &mut x.attachments {
        if a.state == "attaching" && x.state == "in-use" {
            a.state = "attached".into();
        }
    }
    if x.state == "available" {
        x.attachments.clear();
    }
    x
}

fn ec2_snap_view(s: &Timed<Snapshot>, now: jiff::Timestamp) -> Snapshot {
    let mut x = s.item.clone();
    x.state = s.tl.state(now);
    x.progress_pct = s.tl.percent(now);
    x
}

fn inst_view(i: &Timed<Instance>, now: jiff::Timestamp) -> Instance {
    let mut x = i.item.clone();
    x.state = i.tl.state(now);
    x
}

#[async_trait]
impl Ec2 for Sim {
    async fn describe_volumes(&self, region: &str, f: &Filter) -> CloudResult<Vec<Volume>> {
        self.call("ec2", "DescribeVolumes", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region)
            .volumes
            .values()
            .filter(|v| f.matches(&v.item.id, None, &v.item.tags))
            .map(|v| vol_view(v, now))
            .collect())
    }

    async fn describe_snapshots(&self, region: &str, f: &Filter) -> CloudResult<Vec<Snapshot>> {
        self.call("ec2", "DescribeSnapshots", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let mut v: Vec<Snapshot> = w
            .now_region(region)
            .snapshots
            .values()
            .filter(|s| s.tl.start() <= now && f.matches(&s.item.id, None, &s.item.tags))
            .map(|s| ec2_snap_view(s, now))
            .collect();
        v.sort_by_key(|a| std::cmp::Reverse(a.start_time));
        Ok(v)
    }

    async fn describe_snapshots_of_volume(&self, region: &str, volume_id: &str) -> CloudResult<Vec<Snapshot>> {
        self.call("ec2", "DescribeSnapshots", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let mut v: Vec<Snapshot> = w
            .now_region(region)
            .snapshots
            .values()
            .filter(|s| s.tl.start() <= now && s.item.volume_id == volume_id)
            .map(|s| ec2_snap_view(s, now))
            .collect();
        v.sort_by_key(|a| std::cmp::Reverse(a.start_time));
        Ok(v)
    }

    async fn copy_snapshot(&self, region: &str, req: &CopySnapshot) -> CloudResult<Snapshot> {
        let op = "CopySnapshot";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let src = w
            .now_region(&req.source_region)
            .snapshots
            .get(&req.source_snapshot_id)
            .map(|s| ec2_snap_view(s, now))
            .ok_or_else(|| {
                nf(
                    "ec2",
                    op,
                    region,
                    "InvalidSnapshot.NotFound",
                    format!("The snapshot '{}' does not exist in {}", req.source_snapshot_id, req.source_region),
                )
            })?;
        if src.state != "completed" {
            return Err(bad("ec2", op, region, "IncorrectState", format!("snapshot {} is {}", src.id, src.state)));
        }
        let id = w.id("snap", &format!("{region}/copy/{}", src.id));
        let total = w.dur(240.0 + src.size_gib as f64 * 0.05, &id);
        let tl = Timeline::steps(now, &[("pending", total)], "completed");
        let mut s = src.clone();
        s.id.clone_from(&id);
        s.start_time = now;
        s.kms_key_id = req.kms_key_id.clone().or(src.kms_key_id);
        s.description.clone_from(&req.description);
        s.tags = req.tags.clone();
        s.tags.entry("drconsole:source-volume".into()).or_insert(src.volume_id.clone());
        s.tags.insert("drconsole:source-snapshot".into(), src.id.clone());
        let t = Timed { item: s, tl };
        let view = ec2_snap_view(&t, now);
        w.now_region(region).snapshots.insert(id, t);
        Ok(view)
    }

    async fn create_volume(&self, region: &str, req: &CreateVolume) -> CloudResult<Volume> {
        let op = "CreateVolume";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        if !req.az.starts_with(region) {
            return Err(bad(
                "ec2",
                op,
                region,
                "InvalidParameterValue",
                format!("availability zone {} is not in {region}", req.az),
            ));
        }
        let (size, encrypted, kms) = match &req.snapshot_id {
            Some(sid) => {
                let s = w.now_region(region).snapshots.get(sid).map(|s| ec2_snap_view(s, now)).ok_or_else(|| {
                    nf("ec2", op, region, "InvalidSnapshot.NotFound", format!("The snapshot '{sid}' does not exist"))
                })?;
                if s.state != "completed" {
                    return Err(
                        bad("ec2", op, region, "IncorrectState", format!("snapshot {sid} is {}", s.state)).retryable()
                    );
                }
                (
                    req.size_gib.unwrap_or(s.size_gib).max(s.size_gib),
                    s.encrypted || req.kms_key_id.is_some(),
                    req.kms_key_id.clone().or(s.kms_key_id),
                )
            }
            None => (req.size_gib.unwrap_or(100), req.kms_key_id.is_some(), req.kms_key_id.clone()),
        };
        let id = w.id("vol", &format!("{region}/{}/{:?}", req.az, req.snapshot_id));
        let d = w.dur(20.0 + size as f64 * 0.02, &id);
        let tl = Timeline::steps(now, &[("creating", d)], "available");
        let v = Volume {
            id: id.clone(),
            az: req.az.clone(),
            size_gib: size,
            volume_type: req.volume_type.clone(),
            state: "creating".into(),
            snapshot_id: req.snapshot_id.clone(),
            encrypted,
            kms_key_id: kms,
            attachments: Vec::new(),
            tags: req.tags.clone(),
        };
        let t = Timed { item: v, tl };
        let view = vol_view(&t, now);
        w.now_region(region).volumes.insert(id, t);
        Ok(view)
    }

    async fn attach_volume(&self, region: &str, volume_id: &str, instance_id: &str, device: &str) -> CloudResult<()> {
        let op = "AttachVolume";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let d = w.dur(8.0, &format!("attach/{volume_id}"));
        let r = w.now_region(region);
        let inst = r.instances.get(instance_id).map(|i| inst_view(i, now)).ok_or_else(|| {
            nf(
                "ec2",
                op,
                region,
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{instance_id}' does not exist"),
            )
        })?;
        if inst.block_devices.contains_key(device) {
            return Err(bad(
                "ec2",
                op,
                region,
                "InvalidParameterValue",
                format!("device {device} on {instance_id} is already in use"),
            ));
        }
        let v = r.volumes.get_mut(volume_id).ok_or_else(|| {
            nf("ec2", op, region, "InvalidVolume.NotFound", format!("The volume '{volume_id}' does not exist"))
        })?;
        let state = v.tl.state(now);
        if state != "available" {
            return Err(bad(
                "ec2",
                op,
                region,
                "IncorrectState",
                format!("volume {volume_id} is {state}, not available"),
            ));
        }
        if v.item.az != inst.az {
            return Err(bad(
                "ec2",
                op,
                region,
                "InvalidVolume.ZoneMismatch",
                format!("volume {volume_id} is in {}, instance {instance_id} in {}", v.item.az, inst.az),
            ));
        }
        v.item.attachments = vec![VolumeAttachment {
            instance_id: instance_id.into(),
            device: device.into(),
            state: "attaching".into(),
        }];
        v.tl.then(now, &[("attaching", d)], "in-use");
        if let Some(i) = r.instances.get_mut(instance_id) {
            i.item.block_devices.insert(device.into(), volume_id.into());
        }
        Ok(())
    }

    async fn detach_volume(&self, region: &str, volume_id: &str, instance_id: &str) -> CloudResult<()> {
        let op = "DetachVolume";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let d = w.dur(10.0, &format!("detach/{volume_id}"));
        let r = w.now_region(region);
        let v = r.volumes.get_mut(volume_id).ok_or_else(|| {
            nf("ec2", op, region, "InvalidVolume.NotFound", format!("The volume '{volume_id}' does not exist"))
        })?;
        if !v.item.attachments.iter().any(|a| a.instance_id == instance_id) {
            return Err(bad(
                "ec2",
                op,
                region,
                "IncorrectState",
                format!("volume {volume_id} is not attached to {instance_id}"),
            ));
        }
        let running = r.instances.get(instance_id).is_some_and(|i| i.tl.state(now) == "running");
        let v = r
            .volumes
            .get_mut(volume_id)
            .ok_or_else(|| nf("ec2", op, region, "InvalidVolume.NotFound", volume_id.to_string()))?;
        if running && v.item.attachments.iter().any(|a| a.device == "/dev/xvda" || a.device == "/dev/sda1") {
            return Err(bad(
                "ec2",
                op,
                region,
                "IncorrectState",
                format!("cannot detach the root volume {volume_id} of running instance {instance_id}"),
            ));
        }
        for a in &mut v.item.attachments {
            a.state = "detaching".into();
        }
        v.tl.then(now, &[("in-use", d)], "available");
        if let Some(i) = r.instances.get_mut(instance_id) {
            i.item.block_devices.retain(|_, vid| vid != volume_id);
        }
        Ok(())
    }

    async fn stop_instances(&self, region: &str, ids: &[String]) -> CloudResult<()> {
        self.call("ec2", "StopInstances", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let ds: Vec<Duration> = ids.iter().map(|id| w.dur(45.0, &format!("stop/{id}"))).collect();
        let r = w.now_region(region);
        for (id, d) in ids.iter().zip(ds) {
            let i = r.instances.get_mut(id).ok_or_else(|| {
                nf(
                    "ec2",
                    "StopInstances",
                    region,
                    "InvalidInstanceID.NotFound",
                    format!("The instance ID '{id}' does not exist"),
                )
            })?;
            if i.tl.state(now) == "running" {
                i.tl.then(now, &[("stopping", d)], "stopped");
            }
        }
        Ok(())
    }

    async fn start_instances(&self, region: &str, ids: &[String]) -> CloudResult<()> {
        self.call("ec2", "StartInstances", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let ds: Vec<Duration> = ids.iter().map(|id| w.dur(35.0, &format!("start/{id}"))).collect();
        let r = w.now_region(region);
        for (id, d) in ids.iter().zip(ds) {
            let i = r.instances.get_mut(id).ok_or_else(|| {
                nf(
                    "ec2",
                    "StartInstances",
                    region,
                    "InvalidInstanceID.NotFound",
                    format!("The instance ID '{id}' does not exist"),
                )
            })?;
            let s = i.tl.state(now);
            if s == "stopping" {
                return Err(bad(
                    "ec2",
                    "StartInstances",
                    region,
                    "IncorrectInstanceState",
                    format!("instance {id} is stopping"),
                )
                .retryable());
            }
            if s == "stopped" {
                i.tl.then(now, &[("pending", d)], "running");
            }
        }
        Ok(())
    }

    async fn describe_instances(&self, region: &str, f: &Filter) -> CloudResult<Vec<Instance>> {
        self.call("ec2", "DescribeInstances", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region)
            .instances
            .values()
            .filter(|i| f.matches(&i.item.id, None, &i.item.tags))
            .map(|i| inst_view(i, now))
            .collect())
    }

    async fn describe_images(&self, region: &str, f: &Filter) -> CloudResult<Vec<Image>> {
        self.call("ec2", "DescribeImages", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let mut v: Vec<Image> = w
            .now_region(region)
            .images
            .values()
            .filter(|i| f.matches(&i.item.id, Some(&i.item.name), &i.item.tags))
            .map(|i| {
                let mut x = i.item.clone();
                x.state = i.tl.state(now);
                x
            })
            .collect();
        v.sort_by_key(|a| std::cmp::Reverse(a.created));
        Ok(v)
    }

    async fn copy_image(&self, region: &str, req: &CopyImage) -> CloudResult<Image> {
        let op = "CopyImage";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        if let Some(id) = w.now_region(region).image_tokens.get(&req.client_token).cloned()
            && let Some(i) = w.now_region(region).images.get(&id)
        {
            let mut x = i.item.clone();
            x.state = i.tl.state(now);
            return Ok(x);
        }
        let src =
            w.now_region(&req.source_region).images.get(&req.source_image_id).map(|i| i.item.clone()).ok_or_else(
                || {
                    nf(
                        "ec2",
                        op,
                        region,
                        "InvalidAMIID.NotFound",
                        format!("The image id '[{}]' does not exist in {}", req.source_image_id, req.source_region),
                    )
                },
            )?;
        let id = w.id("ami", &format!("{region}/{}", req.client_token));
        let d = w.dur(600.0 + src.size_gib as f64 * 2.0, &id);
        let tl = Timeline::steps(now, &[("pending", d)], "available");
        let img = Image {
            id: id.clone(),
            name: req.name.clone(),
            state: "pending".into(),
            created: now,
            encrypted: true,
            size_gib: src.size_gib,
            snapshot_ids: Vec::new(),
            tags: req.tags.clone(),
        };
        let r = w.now_region(region);
        r.image_tokens.insert(req.client_token.clone(), id.clone());
        r.images.insert(id, Timed { item: img.clone(), tl });
        Ok(img)
    }

    async fn describe_launch_template(&self, region: &str, name: &str) -> CloudResult<Option<LaunchTemplate>> {
        self.call("ec2", "DescribeLaunchTemplates", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region).launch_templates.get(name).cloned())
    }

    async fn create_launch_template_version(
        &self,
        region: &str,
        name: &str,
        source_version: u64,
        image_id: &str,
    ) -> CloudResult<u64> {
        let op = "CreateLaunchTemplateVersion";
        self.call("ec2", op, region).await?;
        let mut w = self.lock();
        let r = w.now_region(region);
        if !r.images.contains_key(image_id) {
            return Err(nf(
                "ec2",
                op,
                region,
                "InvalidAMIID.NotFound",
                format!("The image id '[{image_id}]' does not exist in {region}"),
            ));
        }
        let lt = r.launch_templates.get_mut(name).ok_or_else(|| {
            nf(
                "ec2",
                op,
                region,
                "InvalidLaunchTemplateName.NotFoundException",
                format!("launch template {name} does not exist"),
            )
        })?;
        if source_version == 0 || source_version > lt.latest_version {
            return Err(bad(
                "ec2",
                op,
                region,
                "InvalidLaunchTemplateVersion",
                format!("{name} has no version {source_version}"),
            ));
        }
        lt.latest_version += 1;
        lt.version_images.push(image_id.into());
        Ok(lt.latest_version)
    }

    async fn set_default_launch_template_version(&self, region: &str, name: &str, version: u64) -> CloudResult<()> {
        let op = "ModifyLaunchTemplate";
        self.call("ec2", op, region).await?;
        let mut w = self.lock();
        let lt = w.now_region(region).launch_templates.get_mut(name).ok_or_else(|| {
            nf(
                "ec2",
                op,
                region,
                "InvalidLaunchTemplateName.NotFoundException",
                format!("launch template {name} does not exist"),
            )
        })?;
        let idx = usize::try_from(version).unwrap_or(0);
        let Some(img) = idx.checked_sub(1).and_then(|i| lt.version_images.get(i)).cloned() else {
            return Err(bad(
                "ec2",
                op,
                region,
                "InvalidLaunchTemplateVersion",
                format!("{name} has no version {version}"),
            ));
        };
        lt.default_version = version;
        lt.image_id = img;
        Ok(())
    }

    async fn describe_addresses(&self, region: &str, f: &Filter) -> CloudResult<Vec<Address>> {
        self.call("ec2", "DescribeAddresses", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region)
            .addresses
            .values()
            .filter(|a| f.matches(&a.allocation_id, None, &a.tags))
            .cloned()
            .collect())
    }

    async fn allocate_address(&self, region: &str, tags: &Tags) -> CloudResult<Address> {
        self.call("ec2", "AllocateAddress", region).await?;
        let mut w = self.lock();
        let id = w.id("eipalloc", &format!("{region}/{tags:?}"));
        let h = super::hash_of(&id);
        let a = Address {
            allocation_id: id.clone(),
            public_ip: format!("52.{}.{}.{}", h % 250, (h >> 8) % 250, (h >> 16) % 250),
            tags: tags.clone(),
        };
        w.now_region(region).addresses.insert(id, a.clone());
        Ok(a)
    }

    async fn describe_nat_gateways(&self, region: &str, f: &Filter) -> CloudResult<Vec<NatGateway>> {
        self.call("ec2", "DescribeNatGateways", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region)
            .nats
            .values()
            .filter(|n| f.matches(&n.item.id, None, &n.item.tags))
            .map(|n| {
                let mut x = n.item.clone();
                x.state = n.tl.state(now);
                x
            })
            .collect())
    }

    async fn create_nat_gateway(&self, region: &str, req: &CreateNatGateway) -> CloudResult<NatGateway> {
        let op = "CreateNatGateway";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        if let Some(id) = w.now_region(region).nat_tokens.get(&req.client_token).cloned()
            && let Some(n) = w.now_region(region).nats.get(&id)
        {
            let mut x = n.item.clone();
            x.state = n.tl.state(now);
            return Ok(x);
        }
        if !w.now_region(region).subnets.contains_key(&req.subnet_id) {
            return Err(nf(
                "ec2",
                op,
                region,
                "InvalidSubnetID.NotFound",
                format!("The subnet ID '{}' does not exist", req.subnet_id),
            ));
        }
        if !w.now_region(region).addresses.contains_key(&req.allocation_id) {
            return Err(nf(
                "ec2",
                op,
                region,
                "InvalidAllocationID.NotFound",
                format!("allocation {} does not exist", req.allocation_id),
            ));
        }
        let id = w.id("nat", &format!("{region}/{}", req.client_token));
        // NAT gateways take 1-3 minutes
        let d = w.dur(60.0 + 120.0 * super::unit(super::hash_of(&(w.seed, &id))), &id);
        let tl = Timeline::steps(now, &[("pending", d)], "available");
        let n = NatGateway {
            id: id.clone(),
            subnet_id: req.subnet_id.clone(),
            allocation_id: req.allocation_id.clone(),
            state: "pending".into(),
            tags: req.tags.clone(),
        };
        let r = w.now_region(region);
        r.nat_tokens.insert(req.client_token.clone(), id.clone());
        r.nats.insert(id, Timed { item: n.clone(), tl });
        Ok(n)
    }

    async fn describe_route_tables(&self, region: &str, f: &Filter) -> CloudResult<Vec<RouteTable>> {
        self.call("ec2", "DescribeRouteTables", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region)
            .route_tables
            .values()
            .filter(|t| {
                f.matches(&t.id, None, &t.tags)
                    || (!f.ids.is_empty()
                        && f.ids.contains(&t.vpc_id)
                        && f.tags.iter().all(|(k, v)| t.tags.get(k) == Some(v)))
            })
            .cloned()
            .collect())
    }

    async fn set_route_to_nat(
        &self,
        region: &str,
        route_table_id: &str,
        destination: &str,
        nat_gateway_id: &str,
    ) -> CloudResult<()> {
        let op = "ReplaceRoute";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let r = w.now_region(region);
        let nat_state = r.nats.get(nat_gateway_id).map(|n| n.tl.state(now));
        if nat_state.as_deref() != Some("available") {
            return Err(bad(
                "ec2",
                op,
                region,
                "InvalidNatGatewayID.NotFound",
                format!("NAT gateway {nat_gateway_id} is not available ({nat_state:?})"),
            ));
        }
        let t = r.route_tables.get_mut(route_table_id).ok_or_else(|| {
            nf(
                "ec2",
                op,
                region,
                "InvalidRouteTableID.NotFound",
                format!("The routeTable ID '{route_table_id}' does not exist"),
            )
        })?;
        t.routes.retain(|x| x.destination != destination);
        t.routes.push(Route {
            destination: destination.into(),
            nat_gateway_id: Some(nat_gateway_id.into()),
            gateway_id: None,
        });
        Ok(())
    }

    async fn describe_subnets(&self, region: &str, f: &Filter) -> CloudResult<Vec<Subnet>> {
        self.call("ec2", "DescribeSubnets", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region)
            .subnets
            .values()
            .filter(|s| {
                f.matches(&s.id, None, &s.tags)
                    || (!f.ids.is_empty()
                        && f.ids.contains(&s.vpc_id)
                        && f.tags.iter().all(|(k, v)| s.tags.get(k) == Some(v)))
            })
            .cloned()
            .collect())
    }

    async fn describe_vpcs(&self, region: &str, f: &Filter) -> CloudResult<Vec<Vpc>> {
        self.call("ec2", "DescribeVpcs", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region).vpcs.values().filter(|v| f.matches(&v.id, None, &v.tags)).cloned().collect())
    }
}

#[async_trait]
impl Elb for Sim {
    async fn describe_load_balancer(&self, region: &str, name: &str) -> CloudResult<Option<LoadBalancer>> {
        self.call("elbv2", "DescribeLoadBalancers", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region).lbs.get(name).map(|l| {
            let mut x = l.item.clone();
            x.state = l.tl.state(now);
            x
        }))
    }

    async fn create_load_balancer(&self, region: &str, req: &CreateLoadBalancer) -> CloudResult<LoadBalancer> {
        let op = "CreateLoadBalancer";
        self.call("elbv2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        if w.now_region(region).lbs.contains_key(&req.name) {
            return Err(bad(
                "elbv2",
                op,
                region,
                "DuplicateLoadBalancerName",
                format!("A load balancer with the same name '{}' exists", req.name),
            ));
        }
        let subnets: Vec<Subnet> =
            req.subnets.iter().filter_map(|s| w.now_region(region).subnets.get(s).cloned()).collect();
        if subnets.len() < 2 || subnets.iter().map(|s| &s.az).collect::<std::collections::BTreeSet<_>>().len() < 2 {
            return Err(bad(
                "elbv2",
                op,
                region,
                "InvalidConfigurationRequest",
                "At least two subnets in two different Availability Zones must be specified".into(),
            ));
        }
        let h = super::hash_of(&(w.seed, region, &req.name));
        let arn = w.arn("elasticloadbalancing", region, &format!("loadbalancer/app/{}/{:016x}", req.name, h));
        let d = w.dur(180.0, &arn);
        let tl = Timeline::steps(now, &[("provisioning", d)], "active");
        let lb = LoadBalancer {
            arn,
            name: req.name.clone(),
            dns_name: format!("{}-{}.{region}.elb.amazonaws.com", req.name, h % 1_000_000_000),
            canonical_hosted_zone_id: "Z35SXDOTRQ7X7K".into(),
            state: "provisioning".into(),
            scheme: req.scheme.clone(),
            vpc_id: subnets[0].vpc_id.clone(),
            subnets: req.subnets.clone(),
            security_groups: req.security_groups.clone(),
            tags: req.tags.clone(),
        };
        w.now_region(region).lbs.insert(req.name.clone(), Timed { item: lb.clone(), tl });
        Ok(lb)
    }

    async fn describe_target_group(&self, region: &str, name: &str) -> CloudResult<Option<TargetGroup>> {
        self.call("elbv2", "DescribeTargetGroups", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region).tgs.get(name).cloned())
    }

    async fn create_target_group(&self, region: &str, req: &CreateTargetGroup) -> CloudResult<TargetGroup> {
        let op = "CreateTargetGroup";
        self.call("elbv2", op, region).await?;
        let mut w = self.lock();
        if let Some(t) = w.now_region(region).tgs.get(&req.name) {
            return Ok(t.clone());
        }
        let h = super::hash_of(&(w.seed, region, &req.name));
        let tg = TargetGroup {
            arn: w.arn("elasticloadbalancing", region, &format!("targetgroup/{}/{:016x}", req.name, h)),
            name: req.name.clone(),
            protocol: req.protocol.clone(),
            port: req.port,
            vpc_id: req.vpc_id.clone(),
            health_check_path: req.health_check_path.clone(),
            tags: req.tags.clone(),
        };
        w.now_region(region).tgs.insert(req.name.clone(), tg.clone());
        Ok(tg)
    }

    async fn describe_listeners(&self, region: &str, load_balancer_arn: &str) -> CloudResult<Vec<Listener>> {
        self.call("elbv2", "DescribeListeners", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region)
            .listeners
            .values()
            .filter(|l| l.load_balancer_arn == load_balancer_arn)
            .cloned()
            .collect())
    }

    async fn create_listener(&self, region: &str, req: &CreateListener) -> CloudResult<Listener> {
        let op = "CreateListener";
        self.call("elbv2", op, region).await?;
        let mut w = self.lock();
        let r = w.now_region(region);
        if !r.lbs.values().any(|l| l.item.arn == req.load_balancer_arn) {
            return Err(nf(
                "elbv2",
                op,
                region,
                "LoadBalancerNotFound",
                format!("load balancer {} not found", req.load_balancer_arn),
            ));
        }
        if r.listeners.values().any(|l| l.load_balancer_arn == req.load_balancer_arn && l.port == req.port) {
            return Err(bad(
                "elbv2",
                op,
                region,
                "DuplicateListener",
                format!("a listener on port {} exists", req.port),
            ));
        }
        let arn = format!("{}/listener/{}", req.load_balancer_arn.replace(":loadbalancer/", ":listener/"), req.port);
        let l = Listener {
            arn: arn.clone(),
            load_balancer_arn: req.load_balancer_arn.clone(),
            protocol: req.protocol.clone(),
            port: req.port,
            target_group_arn: req.target_group_arn.clone(),
            certificate_arn: req.certificate_arn.clone(),
        };
        r.listeners.insert(arn, l.clone());
        Ok(l)
    }

    async fn register_targets(&self, region: &str, target_group_arn: &str, ids: &[String]) -> CloudResult<()> {
        self.call("elbv2", "RegisterTargets", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let port =
            w.now_region(region).tgs.values().find(|t| t.arn == target_group_arn).map(|t| t.port).ok_or_else(|| {
                nf(
                    "elbv2",
                    "RegisterTargets",
                    region,
                    "TargetGroupNotFound",
                    format!("target group {target_group_arn} not found"),
                )
            })?;
        for id in ids {
            let d = w.dur(60.0, &format!("health/{target_group_arn}/{id}"));
            let list = w.now_region(region).targets.entry(target_group_arn.into()).or_default();
            if !list.iter().any(|t| t.id == *id) {
                list.push(SimTarget { id: id.clone(), port, healthy_at: add(now, d) });
            }
        }
        Ok(())
    }

    async fn describe_target_health(&self, region: &str, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>> {
        self.call("elbv2", "DescribeTargetHealth", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region)
            .targets
            .get(target_group_arn)
            .map(|l| {
                l.iter()
                    .map(|t| TargetHealth {
                        id: t.id.clone(),
                        port: t.port,
                        state: if now >= t.healthy_at { "healthy" } else { "initial" }.into(),
                        reason: (now < t.healthy_at).then(|| "Elb.InitialHealthChecking".into()),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

impl World {
    /// Brings an ASG's instances to `desired`: new ones go Pending → InService and, once in service, register
    /// with the group's target groups (healthy after the health checks pass).
    fn scale(&mut self, region: &str, name: &str, now: jiff::Timestamp) {
        let Some(a) = self.now_region(region).asgs.get(name).cloned() else { return };
        let want = a.group.desired as usize;
        let mut inst = a.instances.clone();
        inst.truncate(want);
        // the version the group names: `$Default`, `$Latest` or a number
        let version =
            self.now_region(region).launch_templates.get(&a.group.launch_template_name).map_or(1, |lt| {
                match a.group.launch_template_version.as_str() {
                    "$Latest" => lt.latest_version,
                    v => v.parse().unwrap_or(lt.default_version),
                }
            });
        let mut new = Vec::new();
        let mut k = inst.len();
        while inst.len() < want {
            let id = self.id("i", &format!("{region}/{name}/{k}"));
            let d = self.dur(120.0, &id);
            let az = a
                .group
                .subnets
                .get(k % a.group.subnets.len().max(1))
                .and_then(|s| self.now_region(region).subnets.get(s))
                .map_or_else(|| format!("{region}a"), |s| s.az.clone());
            inst.push(SimAsgInstance {
                id: id.clone(),
                az,
                version,
                tl: Timeline::steps(now, &[("Pending", d)], "InService"),
            });
            new.push((id, add(now, d)));
            k += 1;
        }
        let tgs = a.group.target_group_arns.clone();
        for tg in &tgs {
            let port = self.now_region(region).tgs.values().find(|t| t.arn == *tg).map_or(80, |t| t.port);
            for i in &inst {
                let in_service = i.tl.end();
                let d = self.dur(45.0, &format!("health/{tg}/{}", i.id));
                let list = self.now_region(region).targets.entry(tg.clone()).or_default();
                if !list.iter().any(|t| t.id == i.id) {
                    list.push(SimTarget { id: i.id.clone(), port, healthy_at: add(in_service.max(now), d) });
                }
            }
        }
        if let Some(g) = self.now_region(region).asgs.get_mut(name) {
            g.instances = inst;
        }
    }
}

fn asg_view(a: &super::SimAsg, now: jiff::Timestamp) -> AutoScalingGroup {
    let mut g = a.group.clone();
    // a finished refresh moved every instance to its version
    let refreshed = a.refreshes.iter().filter(|(_, tl, _)| tl.state(now) == "Successful").map(|(_, _, v)| *v).max();
    g.instances = a
        .instances
        .iter()
        .map(|i| AsgInstance {
            id: i.id.clone(),
            az: i.az.clone(),
            lifecycle_state: i.tl.state(now),
            health_status: "Healthy".into(),
            launch_template_version: refreshed.unwrap_or(i.version).max(i.version),
        })
        .collect();
    g
}

#[async_trait]
impl Asg for Sim {
    async fn describe_auto_scaling_group(&self, region: &str, name: &str) -> CloudResult<Option<AutoScalingGroup>> {
        self.call("autoscaling", "DescribeAutoScalingGroups", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        // a deleted group is gone once its instances are
        Ok(w.now_region(region)
            .asgs
            .get(name)
            .filter(|a| a.deleted_at.is_none_or(|t| t > now))
            .map(|a| asg_view(a, now)))
    }

    async fn create_auto_scaling_group(&self, region: &str, req: &CreateAutoScalingGroup) -> CloudResult<()> {
        let op = "CreateAutoScalingGroup";
        self.call("autoscaling", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        // a deleted group's name is free again once it is gone
        w.now_region(region).asgs.retain(|_, a| a.deleted_at.is_none_or(|t| t > now));
        if w.now_region(region).asgs.contains_key(&req.name) {
            return Err(bad(
                "autoscaling",
                op,
                region,
                "AlreadyExists",
                format!(
                    "AutoScalingGroup by this name already exists - A group with the name {} already exists",
                    req.name
                ),
            ));
        }
        if !w.now_region(region).launch_templates.contains_key(&req.launch_template_name) {
            return Err(bad(
                "autoscaling",
                op,
                region,
                "ValidationError",
                format!(
                    "You must use a valid fully-formed launch template. The specified launch template {} does not exist",
                    req.launch_template_name
                ),
            ));
        }
        let arn = w.arn("autoscaling", region, &format!("autoScalingGroup:sim:autoScalingGroupName/{}", req.name));
        let group = AutoScalingGroup {
            name: req.name.clone(),
            arn,
            launch_template_name: req.launch_template_name.clone(),
            launch_template_version: req.launch_template_version.clone(),
            min: req.min,
            max: req.max,
            desired: req.desired,
            subnets: req.subnets.clone(),
            target_group_arns: req.target_group_arns.clone(),
            instances: Vec::new(),
            tags: req.tags.clone(),
        };
        w.now_region(region).asgs.insert(
            req.name.clone(),
            super::SimAsg { group, instances: Vec::new(), refreshes: Vec::new(), deleted_at: None },
        );
        w.scale(region, &req.name, now);
        Ok(())
    }

    async fn update_auto_scaling_group(&self, region: &str, req: &UpdateAutoScalingGroup) -> CloudResult<()> {
        let op = "UpdateAutoScalingGroup";
        self.call("autoscaling", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let a = w.now_region(region).asgs.get_mut(&req.name).ok_or_else(|| {
            nf("autoscaling", op, region, "ValidationError", format!("AutoScalingGroup name not found - {}", req.name))
        })?;
        let g = &mut a.group;
        if let Some(v) = &req.launch_template_version {
            g.launch_template_version.clone_from(v);
        }
        g.min = req.min.unwrap_or(g.min);
        g.max = req.max.unwrap_or(g.max);
        g.desired = req.desired.unwrap_or(g.desired).clamp(g.min, g.max.max(g.min));
        w.scale(region, &req.name, now);
        Ok(())
    }

    async fn attach_target_groups(&self, region: &str, name: &str, arns: &[String]) -> CloudResult<()> {
        let op = "AttachLoadBalancerTargetGroups";
        self.call("autoscaling", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let a = w.now_region(region).asgs.get_mut(name).ok_or_else(|| {
            nf("autoscaling", op, region, "ValidationError", format!("AutoScalingGroup name not found - {name}"))
        })?;
        for arn in arns {
            if !a.group.target_group_arns.contains(arn) {
                a.group.target_group_arns.push(arn.clone());
            }
        }
        w.scale(region, name, now);
        Ok(())
    }

    async fn start_instance_refresh(&self, region: &str, name: &str, min_healthy_pct: u8) -> CloudResult<String> {
        let op = "StartInstanceRefresh";
        self.call("autoscaling", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let Some(a) = w.now_region(region).asgs.get(name).cloned() else {
            return Err(nf(
                "autoscaling",
                op,
                region,
                "ValidationError",
                format!("AutoScalingGroup name not found - {name}"),
            ));
        };
        if a.refreshes.iter().any(|(_, tl, _)| matches!(tl.state(now).as_str(), "Pending" | "InProgress")) {
            return Err(bad(
                "autoscaling",
                op,
                region,
                "InstanceRefreshInProgress",
                format!("An instance refresh is already in progress for {name}"),
            ));
        }
        let version =
            w.now_region(region).launch_templates.get(&a.group.launch_template_name).map_or(1, |lt| lt.default_version);
        let id = w.id("refresh", &format!("{region}/{name}"));
        // replaced in batches: (100 - min healthy)% at a time, ~4 min per batch (launch + warm-up + health checks)
        let batch = (f64::from(100 - min_healthy_pct.min(99)) / 100.0 * a.instances.len() as f64).ceil().max(1.0);
        let batches = (a.instances.len() as f64 / batch).ceil().max(1.0);
        let d = w.dur(240.0 * batches, &id);
        let tl = Timeline::steps(now, &[("Pending", Duration::from_secs(20)), ("InProgress", d)], "Successful");
        let r = InstanceRefresh { id: id.clone(), status: "Pending".into(), percent: 0, start_time: now };
        if let Some(g) = w.now_region(region).asgs.get_mut(name) {
            g.refreshes.insert(0, (r, tl, version));
        }
        Ok(id)
    }

    async fn describe_instance_refreshes(&self, region: &str, name: &str) -> CloudResult<Vec<InstanceRefresh>> {
        self.call("autoscaling", "DescribeInstanceRefreshes", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region)
            .asgs
            .get(name)
            .map(|a| {
                a.refreshes
                    .iter()
                    .map(|(r, tl, _)| {
                        let mut x = r.clone();
                        x.status = tl.state(now);
                        x.percent = tl.percent(now);
                        x
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[async_trait]
impl Waf for Sim {
    async fn get_web_acl(&self, region: &str, name: &str) -> CloudResult<Option<WebAcl>> {
        self.call("wafv2", "GetWebACL", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region).web_acls.get(name).cloned())
    }

    async fn get_web_acl_for_resource(&self, region: &str, resource_arn: &str) -> CloudResult<Option<WebAcl>> {
        self.call("wafv2", "GetWebACLForResource", region).await?;
        let mut w = self.lock();
        let r = w.now_region(region);
        Ok(r.waf_associations.get(resource_arn).and_then(|acl| r.web_acls.values().find(|a| a.arn == *acl)).cloned())
    }

    async fn associate_web_acl(&self, region: &str, web_acl_arn: &str, resource_arn: &str) -> CloudResult<()> {
        let op = "AssociateWebACL";
        self.call("wafv2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let r = w.now_region(region);
        if !r.web_acls.values().any(|a| a.arn == web_acl_arn) {
            return Err(nf(
                "wafv2",
                op,
                region,
                "WAFNonexistentItemException",
                format!("web ACL {web_acl_arn} does not exist in {region}"),
            ));
        }
        match r.lbs.values().find(|l| l.item.arn == resource_arn) {
            None => {
                return Err(nf(
                    "wafv2",
                    op,
                    region,
                    "WAFNonexistentItemException",
                    format!("resource {resource_arn} does not exist"),
                ));
            }
            Some(l) if l.tl.state(now) != "active" => {
                return Err(bad(
                    "wafv2",
                    op,
                    region,
                    "WAFUnavailableEntityException",
                    format!("load balancer {} is still provisioning", l.item.name),
                )
                .retryable());
            }
            Some(_) => {}
        }
        r.waf_associations.insert(resource_arn.into(), web_acl_arn.into());
        Ok(())
    }
}

#[async_trait]
impl Route53 for Sim {
    async fn find_hosted_zones(&self, name: &str) -> CloudResult<Vec<HostedZone>> {
        self.call("route53", "ListHostedZonesByName", "").await?;
        let w = self.lock();
        let n = fqdn(name);
        Ok(w.zones.values().filter(|z| z.name == n).cloned().collect())
    }

    async fn list_record_sets(&self, zone_id: &str, name: &str) -> CloudResult<Vec<RecordSet>> {
        self.call("route53", "ListResourceRecordSets", "").await?;
        let w = self.lock();
        let n = fqdn(name);
        let recs = w.records.get(zone_id).ok_or_else(|| {
            nf(
                "route53",
                "ListResourceRecordSets",
                "",
                "NoSuchHostedZone",
                format!("No hosted zone found with ID: {zone_id}"),
            )
        })?;
        Ok(recs.iter().filter(|r| r.name == n).cloned().collect())
    }

    async fn upsert_records(&self, zone_id: &str, records: &[RecordSet], comment: &str) -> CloudResult<ChangeInfo> {
        let op = "ChangeResourceRecordSets";
        self.call("route53", op, "").await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let zone = w.zones.get(zone_id).cloned().ok_or_else(|| {
            nf("route53", op, "", "NoSuchHostedZone", format!("No hosted zone found with ID: {zone_id}"))
        })?;
        for r in records {
            if !(r.name == zone.name || r.name.ends_with(&format!(".{}", zone.name))) {
                return Err(bad(
                    "route53",
                    op,
                    "",
                    "InvalidChangeBatch",
                    format!("RRSet with DNS name {} is not permitted in zone {}", r.name, zone.name),
                ));
            }
            if r.alias.is_none() && r.values.is_empty() {
                return Err(bad(
                    "route53",
                    op,
                    "",
                    "InvalidInput",
                    format!("record {} has neither values nor an alias target", r.name),
                ));
            }
        }
        let id = format!("C{:019X}", super::hash_of(&(w.seed, zone_id, comment, w.changes.len())));
        let d = w.dur(60.0, &id);
        let recs = w.records.entry(zone_id.into()).or_default();
        for r in records {
            recs.retain(|x| !(x.name == r.name && x.rtype == r.rtype && x.set_identifier == r.set_identifier));
            recs.push(r.clone());
        }
        let info = ChangeInfo { id: id.clone(), status: "PENDING".into(), submitted: now };
        w.changes.insert(id, Timed { item: info.clone(), tl: Timeline::steps(now, &[("PENDING", d)], "INSYNC") });
        Ok(info)
    }

    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeInfo> {
        self.call("route53", "GetChange", "").await?;
        let now = self.clock.now();
        let w = self.lock();
        let c = w.changes.get(change_id).ok_or_else(|| {
            nf(
                "route53",
                "GetChange",
                "",
                "NoSuchChange",
                format!("A change with the specified change ID does not exist: {change_id}"),
            )
        })?;
        let mut x = c.item.clone();
        x.status = c.tl.state(now);
        Ok(x)
    }

    async fn find_health_check(&self, caller_reference: &str) -> CloudResult<Option<HealthCheck>> {
        self.call("route53", "ListHealthChecks", "").await?;
        let w = self.lock();
        Ok(w.health_checks.values().find(|h| h.caller_reference == caller_reference).cloned())
    }

    async fn create_health_check(
        &self,
        caller_reference: &str,
        config: &HealthCheckConfig,
    ) -> CloudResult<HealthCheck> {
        self.call("route53", "CreateHealthCheck", "").await?;
        let mut w = self.lock();
        if let Some(h) = w.health_checks.values().find(|h| h.caller_reference == caller_reference) {
            return Ok(h.clone());
        }
        let h = super::hash_of(&(w.seed, caller_reference));
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            h as u32,
            (h >> 32) as u16,
            (h >> 48) & 0xfff,
            h & 0xfff,
            h & 0xffff_ffff_ffff
        );
        let hc = HealthCheck { id: id.clone(), caller_reference: caller_reference.into(), config: config.clone() };
        w.health_checks.insert(id, hc.clone());
        Ok(hc)
    }

    async fn health_check_status(&self, id: &str) -> CloudResult<String> {
        self.call("route53", "GetHealthCheckStatus", "").await?;
        let w = self.lock();
        if w.health_checks.contains_key(id) {
            Ok("Healthy".into())
        } else {
            Err(nf(
                "route53",
                "GetHealthCheckStatus",
                "",
                "NoSuchHealthCheck",
                format!("health check {id} does not exist"),
            ))
        }
    }
}

#[async_trait]
impl S3 for Sim {
    async fn list_objects(&self, region: &str, bucket: &str, prefix: &str) -> CloudResult<Vec<S3Object>> {
        self.call("s3", "ListObjectsV2", region).await?;
        let mut w = self.lock();
        let objs = w.now_region(region).buckets.get(bucket).ok_or_else(|| {
            nf(
                "s3",
                "ListObjectsV2",
                region,
                "NoSuchBucket",
                format!("The specified bucket does not exist: {bucket} in {region}"),
            )
        })?;
        Ok(objs.iter().filter(|o| o.key.starts_with(prefix)).cloned().collect())
    }
}

#[async_trait]
impl Backup for Sim {
    async fn list_recovery_points_by_resource(
        &self,
        region: &str,
        resource_arn: &str,
    ) -> CloudResult<Vec<RecoveryPoint>> {
        self.call("backup", "ListRecoveryPointsByResource", region).await?;
        let mut w = self.lock();
        let mut v: Vec<RecoveryPoint> =
            w.now_region(region).recovery_points.values().filter(|r| r.resource_arn == resource_arn).cloned().collect();
        v.sort_by_key(|a| std::cmp::Reverse(a.created));
        Ok(v)
    }

    async fn list_backup_vaults(&self, region: &str) -> CloudResult<Vec<String>> {
        self.call("backup", "ListBackupVaults", region).await?;
        let mut w = self.lock();
        let mut v: Vec<String> = w.now_region(region).recovery_points.values().map(|x| x.vault.clone()).collect();
        v.sort();
        v.dedup();
        Ok(v)
    }

    async fn list_recovery_points_by_vault(&self, region: &str, vault: &str) -> CloudResult<Vec<RecoveryPoint>> {
        self.call("backup", "ListRecoveryPointsByBackupVault", region).await?;
        let mut w = self.lock();
        let r = w.now_region(region);
        let mut v: Vec<RecoveryPoint> = r.recovery_points.values().filter(|x| x.vault == vault).cloned().collect();
        if v.is_empty() && !r.recovery_points.values().any(|x| x.vault == vault) && r.recovery_points.is_empty() {
            return Err(nf(
                "backup",
                "ListRecoveryPointsByBackupVault",
                region,
                "ResourceNotFoundException",
                format!("Backup vault {vault} does not exist in {region}"),
            ));
        }
        v.sort_by_key(|a| std::cmp::Reverse(a.created));
        Ok(v)
    }

    async fn start_restore_job(&self, region: &str, req: &StartRestoreJob) -> CloudResult<String> {
        let op = "StartRestoreJob";
        self.call("backup", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        if let Some(id) = w.now_region(region).restore_tokens.get(&req.idempotency_token) {
            return Ok(id.clone());
        }
        let rp = w.now_region(region).recovery_points.get(&req.recovery_point_arn).cloned().ok_or_else(|| {
            nf(
                "backup",
                op,
                region,
                "ResourceNotFoundException",
                format!("recovery point {} not found in {region}", req.recovery_point_arn),
            )
        })?;
        let instance = req.metadata.get("DBInstanceIdentifier").cloned().unwrap_or_else(|| "restored".into());
        let id = w.id("restore", &format!("{region}/{}", req.idempotency_token));
        let gib = rp.size_bytes >> 30;
        let tl = restore_timeline(&w, now, gib, &id, 60.0);
        let tl = Timeline {
            phases: tl
                .phases
                .iter()
                .map(|(t, s)| {
                    (
                        *t,
                        match s.as_str() {
                            "available" => "COMPLETED",
                            _ => "RUNNING",
                        }
                        .to_string(),
                    )
                })
                .collect(),
        };
        let db_arn = w.arn("rds", region, &format!("db:{instance}"));
        let job = RestoreJob { id: id.clone(), status: "PENDING".into(), percent: 0, created_resource_arn: None };
        // the database appears as the job runs
        let snap = DbSnapshot {
            id: String::new(),
            arn: rp.arn.clone(),
            instance_id: instance.clone(),
            snapshot_type: "awsbackup".into(),
            status: "available".into(),
            progress_pct: 100,
            created: rp.created,
            engine: "mysql".into(),
            storage_gib: gib,
            encrypted: rp.encrypted,
            kms_key_id: None,
            source_arn: None,
            tags: Tags::new(),
        };
        let db = new_db(
            &w,
            region,
            &instance,
            &snap,
            req.metadata.get("DBInstanceClass").cloned(),
            None,
            &[],
            &Tags::new(),
            now,
        );
        let db_tl = Timeline::steps(now, &[("creating", tl.end().duration_since(now).unsigned_abs())], "available");
        let r = w.now_region(region);
        r.dbs.entry(instance).or_insert(Timed { item: db, tl: db_tl });
        r.restore_tokens.insert(req.idempotency_token.clone(), id.clone());
        r.restore_jobs.insert(id.clone(), (job, tl, db_arn));
        Ok(id)
    }

    async fn describe_restore_job(&self, region: &str, id: &str) -> CloudResult<RestoreJob> {
        self.call("backup", "DescribeRestoreJob", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let (j, tl, arn) = w.now_region(region).restore_jobs.get(id).cloned().ok_or_else(|| {
            nf(
                "backup",
                "DescribeRestoreJob",
                region,
                "ResourceNotFoundException",
                format!("restore job {id} not found"),
            )
        })?;
        let mut x = j;
        x.status = tl.state(now);
        x.percent = tl.percent(now);
        if x.status == "COMPLETED" {
            x.created_resource_arn = Some(arn);
        }
        Ok(x)
    }
}

#[async_trait]
impl Dynamodb for Sim {
    async fn import_table(&self, region: &str, req: &ImportTable) -> CloudResult<ImportDescription> {
        let op = "ImportTable";
        self.call("dynamodb", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        if let Some(i) = w.now_region(region).imports.values().find(|i| i.client_token == req.client_token) {
            let mut d = i.desc.clone();
            d.status = i.tl.state(now);
            return Ok(d);
        }
        if w.now_region(region).tables.contains_key(&req.table_name) {
            return Err(bad(
                "dynamodb",
                op,
                region,
                "ResourceInUseException",
                format!("Table already exists: {}", req.table_name),
            ));
        }
        let objs: Vec<S3Object> = w
            .now_region(region)
            .buckets
            .get(&req.bucket)
            .ok_or_else(|| {
                bad(
                    "dynamodb",
                    op,
                    region,
                    "ImportConflictException",
                    format!("bucket {} does not exist in {region}", req.bucket),
                )
            })?
            .iter()
            .filter(|o| o.key.starts_with(&req.key_prefix))
            .cloned()
            .collect();
        if objs.is_empty() {
            return Err(bad(
                "dynamodb",
                op,
                region,
                "ValidationException",
                format!("no objects under s3://{}/{}", req.bucket, req.key_prefix),
            ));
        }
        let bytes: u64 = objs.iter().map(|o| o.size_bytes).sum();
        let arn = w.arn(
            "dynamodb",
            region,
            &format!("table/{}/import/{:016x}", req.table_name, super::hash_of(&(w.seed, &req.client_token))),
        );
        // imports have a fixed start-up cost, then ~ 100 MB/s
        let d = w.dur(420.0 + bytes as f64 / 100e6, &arn);
        let tl = Timeline::steps(now, &[("IN_PROGRESS", d)], "COMPLETED");
        let desc = ImportDescription {
            arn: arn.clone(),
            table_name: req.table_name.clone(),
            status: "IN_PROGRESS".into(),
            imported_items: 0,
            processed_bytes: 0,
            failure: None,
        };
        let items = bytes / 180;
        let table_arn = w.arn("dynamodb", region, &format!("table/{}", req.table_name));
        let r = w.now_region(region);
        r.imports
            .insert(arn.clone(), SimImport { desc: desc.clone(), tl, client_token: req.client_token.clone(), items });
        r.tables.insert(
            req.table_name.clone(),
            Table {
                name: req.table_name.clone(),
                arn: table_arn,
                status: "CREATING".into(),
                item_count: 0,
                import_arn: Some(arn),
            },
        );
        Ok(desc)
    }

    async fn describe_import(&self, region: &str, arn: &str) -> CloudResult<ImportDescription> {
        self.call("dynamodb", "DescribeImport", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let i = w.now_region(region).imports.get(arn).ok_or_else(|| {
            nf("dynamodb", "DescribeImport", region, "ImportNotFoundException", format!("import {arn} not found"))
        })?;
        let mut d = i.desc.clone();
        d.status = i.tl.state(now);
        let pct = u64::from(i.tl.percent(now));
        d.imported_items = i.items * pct / 100;
        d.processed_bytes = d.imported_items * 180;
        Ok(d)
    }

    async fn describe_table(&self, region: &str, name: &str) -> CloudResult<Option<Table>> {
        self.call("dynamodb", "DescribeTable", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let r = w.now_region(region);
        Ok(r.tables.get(name).map(|t| {
            let mut x = t.clone();
            if let Some(i) = x.import_arn.as_ref().and_then(|a| r.imports.get(a)) {
                let done = i.tl.state(now) == "COMPLETED";
                x.status = if done { "ACTIVE" } else { "CREATING" }.into();
                x.item_count = if done { i.items } else { 0 };
            }
            x
        }))
    }
}

#[async_trait]
impl SecretsManager for Sim {
    async fn get_secret_value(&self, region: &str, id: &str) -> CloudResult<SecretValue> {
        self.call("secretsmanager", "GetSecretValue", region).await?;
        let mut w = self.lock();
        let r = w.now_region(region);
        r.secrets.get(id).or_else(|| r.secrets.values().find(|s| s.arn == id || s.name == id)).cloned().ok_or_else(
            || {
                nf(
                    "secretsmanager",
                    "GetSecretValue",
                    region,
                    "ResourceNotFoundException",
                    format!("Secrets Manager can't find the specified secret: {id}"),
                )
            },
        )
    }
}

#[async_trait]
impl Sts for Sim {
    async fn get_caller_identity(&self, region: &str) -> CloudResult<CallerIdentity> {
        self.call("sts", "GetCallerIdentity", region).await?;
        let w = self.lock();
        let a = w.settings.account.clone();
        Ok(CallerIdentity {
            arn: format!("arn:aws:sts::{a}:assumed-role/DrconsoleSimulator/tabletop"),
            user_id: "AROASIMULATOR:tabletop".into(),
            account: a,
        })
    }
}

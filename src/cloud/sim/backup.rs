//! AWS Backup in the simulator: vaults, recovery points and restore jobs.

use async_trait::async_trait;

use super::rds::{new_db, restore_timeline};
use super::{Sim, Timed, Timeline, nf};
use crate::cloud::*;

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

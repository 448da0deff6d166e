//! AWS Backup: recovery points (by resource, by vault) and restore jobs. moto does not emulate these; they are
//! tested with recorded responses (tests/offline/aws_recorded.rs).

use std::collections::HashMap;

use async_trait::async_trait;

use super::Aws;
use super::convert::ts;
use super::error::from_sdk;
use crate::cloud::{Backup, CloudError, CloudResult, RecoveryPoint, RestoreJob, StartRestoreJob};

const SVC: &str = "backup";

/// `RDS`, `EBS`, `EC2`, `DynamoDB`, `S3`... from a resource ARN (ListRecoveryPointsByResource does not say).
pub fn resource_type_of(arn: &str) -> String {
    let mut parts = arn.split(':');
    let service = parts.nth(2).unwrap_or_default();
    let resource = arn.split(':').nth(5).unwrap_or_default();
    match service {
        "rds" => "RDS",
        "ec2" if resource.starts_with("volume/") => "EBS",
        "ec2" => "EC2",
        "dynamodb" => "DynamoDB",
        "s3" => "S3",
        "elasticfilesystem" => "EFS",
        other => other,
    }
    .to_string()
}

#[async_trait]
impl Backup for Aws {
    async fn list_recovery_points_by_resource(
        &self,
        region: &str,
        resource_arn: &str,
    ) -> CloudResult<Vec<RecoveryPoint>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .backup(region)
            .list_recovery_points_by_resource()
            .resource_arn(resource_arn)
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        let v = r.map_err(|e| from_sdk(SVC, "ListRecoveryPointsByResource", region, e))?;
        Ok(v.iter()
            .map(|p| RecoveryPoint {
                arn: p.recovery_point_arn().unwrap_or_default().to_string(),
                vault: p.backup_vault_name().unwrap_or_default().to_string(),
                resource_arn: resource_arn.to_string(),
                resource_type: resource_type_of(resource_arn),
                status: p.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                created: ts(p.creation_date()),
                size_bytes: p.backup_size_bytes().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                encrypted: p.encryption_key_arn().is_some(),
            })
            .collect())
    }

    async fn list_recovery_points_by_vault(&self, region: &str, vault: &str) -> CloudResult<Vec<RecoveryPoint>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .backup(region)
            .list_recovery_points_by_backup_vault()
            .backup_vault_name(vault)
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        let v = r.map_err(|e| from_sdk(SVC, "ListRecoveryPointsByBackupVault", region, e))?;
        Ok(v.iter()
            .map(|p| RecoveryPoint {
                arn: p.recovery_point_arn().unwrap_or_default().to_string(),
                vault: p.backup_vault_name().unwrap_or(vault).to_string(),
                resource_arn: p.resource_arn().unwrap_or_default().to_string(),
                resource_type: p
                    .resource_type()
                    .map(str::to_string)
                    .unwrap_or_else(|| resource_type_of(p.resource_arn().unwrap_or_default())),
                status: p.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                created: ts(p.creation_date()),
                size_bytes: p.backup_size_in_bytes().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                encrypted: p.is_encrypted(),
            })
            .collect())
    }

    /// Listed once per run and region (the picker and the EBS restore both ask): vaults are made by the backup
    /// setup, not during a recovery.
    async fn list_backup_vaults(&self, region: &str) -> CloudResult<Vec<String>> {
        super::ShapeCache::kept(&self.clients.shapes.vaults, region.to_string(), true, || async {
            let r: Result<Vec<_>, _> =
                self.clients.backup(region).list_backup_vaults().into_paginator().items().send().collect().await;
            let v = r.map_err(|e| from_sdk(SVC, "ListBackupVaults", region, e))?;
            Ok(v.iter().filter_map(|x| x.backup_vault_name()).map(str::to_string).collect())
        })
        .await
    }

    async fn start_restore_job(&self, region: &str, req: &StartRestoreJob) -> CloudResult<String> {
        const OP: &str = "StartRestoreJob";
        self.allow_change(SVC, OP, region).await?;
        // the idempotency token makes a retried call return the same job instead of starting a second restore
        let metadata: HashMap<String, String> = req.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let out = self
            .clients
            .backup(region)
            .start_restore_job()
            .recovery_point_arn(&req.recovery_point_arn)
            .iam_role_arn(&req.iam_role_arn)
            .resource_type(&req.resource_type)
            .set_metadata(Some(metadata))
            .idempotency_token(&req.idempotency_token)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        out.restore_job_id()
            .map(str::to_string)
            .ok_or_else(|| CloudError::new(SVC, OP, region, "EmptyResponse", "no RestoreJobId in the answer"))
    }

    async fn describe_restore_job(&self, region: &str, id: &str) -> CloudResult<RestoreJob> {
        let out = self
            .clients
            .backup(region)
            .describe_restore_job()
            .restore_job_id(id)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, "DescribeRestoreJob", region, e))?;
        let percent = out
            .percent_done()
            .and_then(|p| p.trim_end_matches('%').trim().parse::<f64>().ok())
            .map(|p| p.clamp(0.0, 100.0) as u8)
            .unwrap_or(0);
        Ok(RestoreJob {
            id: out.restore_job_id().unwrap_or(id).to_string(),
            status: out.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            percent,
            created_resource_arn: out.created_resource_arn().map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::resource_type_of;

    #[test]
    fn resource_types_from_arns() {
        assert_eq!(resource_type_of("arn:aws:rds:us-east-1:123456789012:db:orders"), "RDS");
        assert_eq!(resource_type_of("arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc"), "EBS");
        assert_eq!(resource_type_of("arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"), "EC2");
        assert_eq!(resource_type_of("arn:aws:dynamodb:us-east-1:123456789012:table/t"), "DynamoDB");
    }
}

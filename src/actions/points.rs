//! What `recovery_point.select` and the EBS-set search (`ebs_points`) share, in a leaf of its own so that neither
//! imports the other back: the answer that accepts an RPO loss, and the AWS Backup recovery points of a region.

use crate::cloud::Cloud;

/// An answer (or `--recovery-point`) of `accept-rpo-loss:ID` chooses `ID` and records that the operator accepted
/// its data loss: a point older than the RPO is then taken even with `require_rpo = true`.
pub const ACCEPT_RPO_LOSS: &str = "accept-rpo-loss:";

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

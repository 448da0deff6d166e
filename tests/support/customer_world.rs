//! The customer's world as their own tooling left it, built in moto with plain AWS SDK clients and **no drconsole
//! tag anywhere**: the five applications' hourly RDS and EBS snapshots in us-east-1, taken by a backup Lambda that
//! copies the volume's tags onto each snapshot; their cross-region copies in us-west-2 made the way AWS makes them
//! (CopySnapshot's default description `[Copied snap-… from us-east-1]` with the tags copied, CopyDBSnapshot with
//! CopyTags), and for Cross-sell's newest hour an AWS Backup copy job (the snapshot in us-west-2 plus its recovery
//! point in the `dr-vault` vault); AMIs with timestamped names, built twice, the newest copied to us-west-2 by the
//! customer's pipeline; and **one** DR VPC in us-west-2 shared by the five applications (no NAT gateway yet).
//!
//! moto has backup vaults but no recovery points: the recovery point of the Backup copy is served by the fault
//! proxy from a recorded-shape ListRecoveryPointsByBackupVault answer ([`CustomerWorld::recovery_points_body`])
//! naming the snapshot moto holds; everything else is moto's.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, ResourceType};

use crate::aws_world::{APPS, PRIMARY, SECONDARY, Sdk, ZONE, create_certificate, create_kms_key, network, tags};

pub const SHARED_VPC: &str = "dr-shared-vpc";
pub const VAULT: &str = "dr-vault";
/// The customer's KMS key alias in the secondary region.
pub const KMS_ALIAS: &str = "alias/dr-backup";

/// What the customer's tooling made for one application.
#[derive(Debug, Clone, Default)]
pub struct AppBackups {
    pub volume: String,
    /// The data volume's hourly snapshots in us-east-1, oldest first: (id, start time).
    pub snapshots: Vec<(String, jiff::Timestamp)>,
    /// Their copies in us-west-2 made by CopySnapshot: (copy id, source id).
    pub copies: Vec<(String, String)>,
    /// The AWS Backup copy of the newest snapshot (Cross-sell only): (snapshot id in us-west-2, source id).
    pub backup_copy: Option<(String, String)>,
    /// The newest DB snapshot's time in us-east-1 (what its copy's OriginalSnapshotCreateTime says).
    pub db_time: jiff::Timestamp,
    /// The DB snapshot copy in us-west-2.
    pub db_copy: String,
    /// AMI names in us-east-1, oldest first; the newest is copied to us-west-2 under the same name.
    pub ami_names: Vec<String>,
    /// The copied AMI in us-west-2.
    pub ami_copy: String,
}

#[derive(Debug, Clone, Default)]
pub struct CustomerWorld {
    pub account: String,
    pub zone_id: String,
    pub vpc: String,
    pub public: Vec<String>,
    pub private: Vec<String>,
    pub private_rts: Vec<String>,
    /// The shared VPC's main route table (associated with no subnet).
    pub main_rt: String,
    pub certificate: BTreeMap<String, String>,
    pub apps: BTreeMap<String, AppBackups>,
    /// ListRecoveryPointsByBackupVault for `dr-vault` in us-west-2 (what AWS Backup would answer).
    pub recovery_points_body: String,
}

fn stamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H-%M-%S").to_string()
}

async fn snapshot_time(ec2: &aws_sdk_ec2::Client, id: &str) -> jiff::Timestamp {
    let out = ec2.describe_snapshots().snapshot_ids(id).send().await.unwrap();
    let t = out.snapshots()[0].start_time().unwrap();
    jiff::Timestamp::new(t.secs(), 0).unwrap()
}

/// How the customer's tooling copies EBS snapshots to us-west-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tooling {
    /// CopySnapshot's default description `[Copied snap-… from us-east-1]` with the volume's tags copied, and an
    /// AWS Backup copy job for Cross-sell's newest hour.
    AwsDefault,
    /// The customer's own Lambda, a convention drconsole does not know in advance: every hour copied with its own
    /// description (`Hourly DR copy by backup-lambda`, naming nothing), a per-hour `Name` tag
    /// (`cross-sell-data-2026-12-07-00`), the source snapshot in tag [`LAMBDA_SOURCE_TAG`] and its time in tag
    /// [`LAMBDA_TIME_TAG`] written as `2026-12-07 09:00:03` (not RFC 3339).
    Lambda,
}

/// The Lambda's tag naming a copy's source snapshot.
pub const LAMBDA_SOURCE_TAG: &str = "backup:source";
/// The Lambda's tag holding the source snapshot's time.
pub const LAMBDA_TIME_TAG: &str = "backup:taken-at";
/// How many hours the Lambda world keeps (each copied).
pub const LAMBDA_HOURS: usize = 3;

/// Builds the customer's world. Takes a few seconds against moto (it waits 1.1 s between the hours: moto's EBS
/// times have 1 s resolution, and the checks tell a copy's time from its source's).
pub async fn build(endpoint: &str) -> CustomerWorld {
    build_with(endpoint, Tooling::AwsDefault).await
}

/// Builds the customer's world with the EBS copies made by `tooling`.
pub async fn build_with(endpoint: &str, tooling: Tooling) -> CustomerWorld {
    let p = Sdk::new(endpoint, PRIMARY).await;
    let s = Sdk::new(endpoint, SECONDARY).await;
    let kms_primary = create_kms_key(endpoint, PRIMARY, "prod-data");
    let kms_secondary = create_kms_key(endpoint, SECONDARY, KMS_ALIAS.trim_start_matches("alias/"));
    let mut w = CustomerWorld {
        account: p.sts.get_caller_identity().send().await.unwrap().account.unwrap(),
        ..CustomerWorld::default()
    };
    let pn = network(&p.ec2, PRIMARY, "10.0", "prod").await;
    let sn = network(&s.ec2, SECONDARY, "10.200", SHARED_VPC).await;
    w.vpc = sn.vpc.clone();
    w.public = sn.public.clone();
    w.private = sn.private.clone();
    w.private_rts = sn.private_rts.clone();
    let main = s
        .ec2
        .describe_route_tables()
        .filters(Filter::builder().name("vpc-id").values(&w.vpc).build())
        .filters(Filter::builder().name("association.main").values("true").build())
        .send()
        .await
        .unwrap();
    w.main_rt = main.route_tables()[0].route_table_id().unwrap().to_string();
    let zone = p.r53.create_hosted_zone().name(ZONE).caller_reference("customer-zone").send().await.unwrap();
    w.zone_id = zone.hosted_zone.unwrap().id.rsplit('/').next().unwrap().to_string();
    let backup = aws_sdk_backup::Client::new(&crate::aws_world::sdk_config(endpoint, SECONDARY).await);
    backup.create_backup_vault().backup_vault_name(VAULT).send().await.unwrap();
    let base_ami =
        p.ec2.describe_images().owners("amazon").send().await.unwrap().images.unwrap()[0].image_id.clone().unwrap();

    let mut instances = BTreeMap::new();
    for app in APPS {
        w.certificate
            .insert(app.name.into(), create_certificate(endpoint, SECONDARY, &format!("{}.example-fin.com", app.name)));
        p.sm.create_secret()
            .name(format!("prod/{}/db-master", app.name))
            .secret_string(r#"{"username":"dbadmin","password":"Sup3r-s3cret-pw"}"#)
            .add_replica_regions(aws_sdk_secretsmanager::types::ReplicaRegionType::builder().region(SECONDARY).build())
            .send()
            .await
            .unwrap();
        s.waf
            .create_web_acl()
            .name(format!("{}-dr-acl", app.name))
            .scope(aws_sdk_wafv2::types::Scope::Regional)
            .default_action(
                aws_sdk_wafv2::types::DefaultAction::builder()
                    .allow(aws_sdk_wafv2::types::AllowAction::builder().build())
                    .build(),
            )
            .visibility_config(
                aws_sdk_wafv2::types::VisibilityConfig::builder()
                    .sampled_requests_enabled(false)
                    .cloud_watch_metrics_enabled(false)
                    .metric_name(app.name.replace('-', ""))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let inst = p
            .ec2
            .run_instances()
            .image_id(&base_ami)
            .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
            .min_count(1)
            .max_count(1)
            .subnet_id(&pn.private[0])
            .tag_specifications(tags(ResourceType::Instance, &[("Name", app.name), ("app", app.name)]))
            .send()
            .await
            .unwrap()
            .instances
            .unwrap()
            .remove(0);
        let inst_id = inst.instance_id.unwrap();
        let az = inst.placement.unwrap().availability_zone.unwrap();
        let vol = p
            .ec2
            .create_volume()
            .availability_zone(&az)
            .size(app.data_gib)
            .volume_type(aws_sdk_ec2::types::VolumeType::Gp3)
            .encrypted(true)
            .kms_key_id(&kms_primary)
            .tag_specifications(tags(
                ResourceType::Volume,
                &[("Name", &format!("{}-data", app.name)), ("app", app.name)],
            ))
            .send()
            .await
            .unwrap()
            .volume_id
            .unwrap();
        p.ec2.attach_volume().volume_id(&vol).instance_id(&inst_id).device("/dev/sdf").send().await.unwrap();
        // the pipeline's AMI builds, timestamped; launch templates in both regions
        let mut ami_names = Vec::new();
        for age in [2i64, 1] {
            let name =
                format!("{}-web-{}", app.name, stamp(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(age)));
            p.ec2.create_image().instance_id(&inst_id).name(&name).send().await.unwrap();
            ami_names.push(name);
        }
        p.rds
            .create_db_instance()
            .db_instance_identifier(app.db)
            .db_instance_class("db.r6g.large")
            .engine("postgres")
            .master_username("dbadmin")
            .master_user_password("Sup3r-s3cret-pw")
            .allocated_storage(500)
            .storage_encrypted(true)
            .kms_key_id(&kms_primary)
            .backup_retention_period(1)
            .send()
            .await
            .unwrap();
        s.ec2
            .create_launch_template()
            .launch_template_name(format!("{}-web-dr", app.name))
            .launch_template_data(
                aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                    .image_id(&base_ami)
                    .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
                    .security_group_ids(&sn.sg)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        instances.insert(app.name, vol.clone());
        w.apps.insert(app.name.into(), AppBackups { volume: vol, ami_names, ..AppBackups::default() });
    }

    // two hours of backups: every app's EBS snapshot, then its DB snapshot (the Lambda's order), 1.1 s apart
    let mut db_last: BTreeMap<&str, String> = BTreeMap::new();
    let hours = if tooling == Tooling::Lambda { LAMBDA_HOURS } else { 2 };
    for hour in 0..hours {
        for app in APPS {
            let vol = &instances[app.name];
            let snap = p
                .ec2
                .create_snapshot()
                .volume_id(vol)
                .description(format!("Hourly backup of {vol} by backup-lambda"))
                .tag_specifications(tags(
                    ResourceType::Snapshot,
                    &[("Name", &format!("{}-data", app.name)), ("app", app.name), ("created-by", "backup-lambda")],
                ))
                .send()
                .await
                .unwrap()
                .snapshot_id
                .unwrap();
            let t = snapshot_time(&p.ec2, &snap).await;
            w.apps.get_mut(app.name).unwrap().snapshots.push((snap, t));
            let db = p
                .rds
                .create_db_snapshot()
                .db_instance_identifier(app.db)
                .db_snapshot_identifier(format!("{}-hourly-{hour}", app.db))
                .tags(aws_sdk_rds::types::Tag::builder().key("app").value(app.name).build())
                .send()
                .await
                .unwrap()
                .db_snapshot
                .unwrap();
            let created = db.snapshot_create_time.unwrap();
            w.apps.get_mut(app.name).unwrap().db_time =
                jiff::Timestamp::new(created.secs(), i32::try_from(created.subsec_nanos()).unwrap()).unwrap();
            db_last.insert(app.name, db.db_snapshot_arn.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    // the cross-region copies, made later (so a copy's own time is not its data's)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut recovery_points = Vec::new();
    for app in APPS {
        if tooling == Tooling::Lambda {
            let b = w.apps[app.name].clone();
            for (h, (src, t)) in b.snapshots.iter().enumerate() {
                let name = format!("{}-data-{}-{h:02}", app.name, t.strftime("%Y-%m-%d"));
                let when = t.strftime("%Y-%m-%d %H:%M:%S").to_string();
                let pairs = [
                    ("Name", name.as_str()),
                    ("app", app.name),
                    (LAMBDA_SOURCE_TAG, src.as_str()),
                    (LAMBDA_TIME_TAG, when.as_str()),
                ];
                let copy = s
                    .ec2
                    .copy_snapshot()
                    .source_region(PRIMARY)
                    .source_snapshot_id(src)
                    .encrypted(true)
                    .kms_key_id(&kms_secondary)
                    .description("Hourly DR copy by backup-lambda")
                    .tag_specifications(tags(ResourceType::Snapshot, &pairs))
                    .send()
                    .await
                    .unwrap()
                    .snapshot_id
                    .unwrap();
                w.apps.get_mut(app.name).unwrap().copies.push((copy, src.clone()));
            }
        }
        let b = w.apps[app.name].clone();
        let copy_tags = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, String)> {
            let mut t = vec![("Name", format!("{}-data", app.name)), ("app", app.name.to_string())];
            t.extend(extra.iter().map(|(k, v)| (*k, (*v).to_string())));
            t
        };
        let (newest, newest_t) = b.snapshots.last().cloned().unwrap();
        let mut to_copy: Vec<&(String, jiff::Timestamp)> = vec![b.snapshots.last().unwrap()];
        if tooling == Tooling::Lambda {
            to_copy.clear();
        } else if app.name == "cross-sell" {
            // the older hour by CopySnapshot; the newest by an AWS Backup copy job (below)
            to_copy = vec![&b.snapshots[0]];
        }
        for (src, _) in to_copy {
            let t = copy_tags(&[("created-by", "backup-lambda")]);
            let pairs: Vec<(&str, &str)> = t.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let copy = s
                .ec2
                .copy_snapshot()
                .source_region(PRIMARY)
                .source_snapshot_id(src)
                .encrypted(true)
                .kms_key_id(&kms_secondary)
                // what AWS writes when the caller gives no description (moto leaves it empty)
                .description(format!("[Copied {src} from {PRIMARY}]"))
                .tag_specifications(tags(ResourceType::Snapshot, &pairs))
                .send()
                .await
                .unwrap()
                .snapshot_id
                .unwrap();
            w.apps.get_mut(app.name).unwrap().copies.push((copy, src.clone()));
        }
        if app.name == "cross-sell" && tooling == Tooling::AwsDefault {
            let t = copy_tags(&[]);
            let pairs: Vec<(&str, &str)> = t.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let copy = s
                .ec2
                .copy_snapshot()
                .source_region(PRIMARY)
                .source_snapshot_id(&newest)
                .encrypted(true)
                .kms_key_id(&kms_secondary)
                .description("This snapshot is created by the AWS Backup service.")
                .tag_specifications(tags(ResourceType::Snapshot, &pairs))
                .send()
                .await
                .unwrap()
                .snapshot_id
                .unwrap();
            let vol_arn = format!("arn:aws:ec2:{PRIMARY}:{}:volume/{}", w.account, b.volume);
            recovery_points.push(serde_json::json!({
                "RecoveryPointArn": format!("arn:aws:ec2:{SECONDARY}::snapshot/{copy}"),
                "BackupVaultName": VAULT,
                "BackupVaultArn": format!("arn:aws:backup:{SECONDARY}:{}:backup-vault:{VAULT}", w.account),
                "SourceBackupVaultArn": format!("arn:aws:backup:{PRIMARY}:{}:backup-vault:Default", w.account),
                "ResourceArn": vol_arn,
                "ResourceType": "EBS",
                "ResourceName": format!("{}-data", app.name),
                "Status": "COMPLETED",
                "CreationDate": newest_t.as_second() as f64,
                "CompletionDate": newest_t.as_second() as f64 + 1800.0,
                "IsEncrypted": true,
                "EncryptionKeyArn": kms_secondary,
                "BackupSizeInBytes": i64::from(app.data_gib) << 30,
                "IsParent": false,
                "VaultType": "BACKUP_VAULT",
            }));
            w.apps.get_mut(app.name).unwrap().backup_copy = Some((copy, newest.clone()));
        }
        let copy = s
            .rds
            .copy_db_snapshot()
            .source_db_snapshot_identifier(&db_last[app.name])
            .target_db_snapshot_identifier(format!("{}-hourly-1-us-west-2", app.db))
            .kms_key_id(&kms_secondary)
            .copy_tags(true)
            .send()
            .await
            .unwrap()
            .db_snapshot
            .unwrap();
        w.apps.get_mut(app.name).unwrap().db_copy = copy.db_snapshot_identifier.unwrap();
        // the pipeline copies the newest AMI build to the DR region under the same name
        let name = b.ami_names.last().unwrap().clone();
        let src = p
            .ec2
            .describe_images()
            .owners("self")
            .filters(Filter::builder().name("name").values(&name).build())
            .send()
            .await
            .unwrap()
            .images
            .unwrap()
            .remove(0)
            .image_id
            .unwrap();
        let ami = s.ec2.copy_image().source_region(PRIMARY).source_image_id(src).name(&name).send().await.unwrap();
        w.apps.get_mut(app.name).unwrap().ami_copy = ami.image_id.unwrap();
    }
    w.recovery_points_body = serde_json::json!({ "RecoveryPoints": recovery_points }).to_string();
    w
}

/// The `[vars]` a customer sets for an application's runbook in this world (the rest are the runbook's own).
pub fn vars(w: &CustomerWorld, app: &str) -> Vec<String> {
    [
        format!("certificate_arn={}", w.certificate[app]),
        format!("vpc={SHARED_VPC}"),
        format!("ami={app}-web-*"),
        format!("kms_key={KMS_ALIAS}"),
    ]
    .into_iter()
    .flat_map(|v| ["--var".to_string(), v])
    .collect()
}

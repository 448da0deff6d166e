//! The AWS adapter on recorded responses, for what moto server does not emulate (AWS Backup recovery points and
//! restore jobs, Auto Scaling instance refresh), for fields moto fills its own way (RDS OriginalSnapshotCreateTime
//! on a cross-region copy) and for exact error bodies (capacity, throttling, not found): an in-process HTTP client answers each
//! request with a response recorded from the real service's wire format, and keeps every request for assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use crate::replay::infallible_client_fn;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_types::body::SdkBody;

use drconsole::cloud::aws::{ACCOUNT_MISMATCH, Aws, Clients};
use drconsole::cloud::{
    Asg, Backup, DbSnapshotQuery, ErrorKind, Rds, RestoreDbFromSnapshot, StartRestoreJob, Sts, classify,
};

const REGION: &str = "us-west-2";

/// A request as the recorded service saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    body: String,
}

type Responder = dyn Fn(&Seen) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync;

/// An adapter whose every call is answered by `respond`; the requests are kept in the returned log.
async fn recorded(account: Option<&str>, respond: Arc<Responder>) -> (Aws, Arc<Mutex<Vec<Seen>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let http = infallible_client_fn(move |req: http::Request<SdkBody>| {
        let seen = Seen {
            method: req.method().to_string(),
            path: req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default(),
            body: req.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
        };
        log2.lock().unwrap().push(seen.clone());
        let (status, headers, body) = respond(&seen);
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        b.body(SdkBody::from(body)).unwrap()
    });
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_sts::config::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"))
        .http_client(http)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    let clients = Arc::new(Clients::from_config(conf));
    (Aws::new(clients, REGION, account.map(str::to_string)), log)
}

fn xml(body: &str) -> (u16, Vec<(&'static str, String)>, String) {
    (200, vec![("content-type", "text/xml".into())], body.to_string())
}

fn json(body: &str) -> (u16, Vec<(&'static str, String)>, String) {
    (
        200,
        vec![
            ("content-type", "application/json".into()),
            ("x-amzn-requestid", "5f4e3d2c-1b0a-4f9e-8d7c-6b5a49382716".into()),
        ],
        body.to_string(),
    )
}

const CALLER_111: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::111111111111:assumed-role/DrOperator/jane.doe</Arn>
    <UserId>AROA3XFRBF535PLBIFPI4:jane.doe</UserId>
    <Account>111111111111</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#;

/// ListRecoveryPointsByResource, two pages (recorded shape; epoch-second timestamps as AWS Backup sends them).
const RP_PAGE_1: &str = r#"{"NextToken":"AAMA-EFRSHzGo2dmN0dXJh","RecoveryPoints":[
 {"BackupSizeBytes":21474836480,"BackupVaultName":"dr-vault","CreationDate":1.763694E9,
  "EncryptionKeyArn":"arn:aws:kms:us-west-2:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab","IsParent":false,
  "RecoveryPointArn":"arn:aws:rds:us-west-2:111111111111:snapshot:awsbackup:copyjob-6a3c1d2e-3f4b-4c5d-8e9f-0a1b2c3d4e5f",
  "ResourceName":"crosssell-prod","Status":"COMPLETED","VaultType":"BACKUP_VAULT"}]}"#;
const RP_PAGE_2: &str = r#"{"RecoveryPoints":[
 {"BackupSizeBytes":21474836480,"BackupVaultName":"dr-vault","CreationDate":1.7636904E9,
  "IsParent":false,
  "RecoveryPointArn":"arn:aws:rds:us-west-2:111111111111:snapshot:awsbackup:copyjob-0f9e8d7c-6b5a-4938-2716-a5b4c3d2e1f0",
  "ResourceName":"crosssell-prod","Status":"PARTIAL","VaultType":"BACKUP_VAULT"}]}"#;

#[tokio::test]
async fn backup_recovery_points_are_paginated_and_mapped() {
    let resource = "arn:aws:rds:us-east-1:111111111111:db:crosssell-prod";
    let (aws, log) = recorded(
        None,
        Arc::new(|s: &Seen| if s.path.contains("nextToken=") { json(RP_PAGE_2) } else { json(RP_PAGE_1) }),
    )
    .await;
    let points = aws.list_recovery_points_by_resource(REGION, resource).await.unwrap();
    assert_eq!(points.len(), 2, "both pages are read");
    assert_eq!(points[0].status, "COMPLETED");
    assert_eq!(points[0].resource_type, "RDS");
    assert_eq!(points[0].resource_arn, resource);
    assert_eq!(points[0].vault, "dr-vault");
    assert_eq!(points[0].size_bytes, 21_474_836_480);
    assert!(points[0].encrypted);
    assert!(!points[1].encrypted);
    assert_eq!(points[0].created.as_second(), 1_763_694_000);
    assert_eq!(points[1].status, "PARTIAL");
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[0].path.starts_with("/resources/arn%3Aaws%3Ards"), "{}", log[0].path);
    assert!(log[1].path.contains("nextToken=AAMA-EFRSHzGo2dmN0dXJh"), "{}", log[1].path);
}

#[tokio::test]
async fn backup_restore_job_sends_the_idempotency_token_and_reports_progress() {
    let polls = Arc::new(Mutex::new(0u32));
    let p2 = polls.clone();
    let (aws, log) = recorded(
        None,
        Arc::new(move |s: &Seen| {
            if s.path.contains("GetCallerIdentity") || s.body.contains("Action=GetCallerIdentity") {
                return xml(CALLER_111);
            }
            if s.method == "PUT" && s.path.starts_with("/restore-jobs") {
                return json(r#"{"RestoreJobId":"8C7A6B5D-4E3F-2A1B-0C9D-8E7F6A5B4C3D"}"#);
            }
            let mut n = p2.lock().unwrap();
            *n += 1;
            if *n == 1 {
                json(
                    r#"{"AccountId":"111111111111","RestoreJobId":"8C7A6B5D-4E3F-2A1B-0C9D-8E7F6A5B4C3D",
                    "RecoveryPointArn":"arn:aws:rds:us-west-2:111111111111:snapshot:awsbackup:copyjob-6a3c",
                    "CreationDate":1.7637E9,"Status":"RUNNING","PercentDone":"42.00%","BackupSizeInBytes":21474836480,
                    "IamRoleArn":"arn:aws:iam::111111111111:role/service-role/AWSBackupDefaultServiceRole",
                    "ExpectedCompletionTimeMinutes":25,"ResourceType":"RDS"}"#,
                )
            } else {
                json(
                    r#"{"AccountId":"111111111111","RestoreJobId":"8C7A6B5D-4E3F-2A1B-0C9D-8E7F6A5B4C3D",
                    "Status":"COMPLETED","PercentDone":"100.00%","CompletionDate":1.7637012E9,
                    "CreatedResourceArn":"arn:aws:rds:us-west-2:111111111111:db:crosssell-dr","ResourceType":"RDS"}"#,
                )
            }
        }),
    )
    .await;
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert("DBInstanceIdentifier".to_string(), "crosssell-dr".to_string());
    let req = StartRestoreJob {
        recovery_point_arn: "arn:aws:rds:us-west-2:111111111111:snapshot:awsbackup:copyjob-6a3c".into(),
        iam_role_arn: "arn:aws:iam::111111111111:role/service-role/AWSBackupDefaultServiceRole".into(),
        resource_type: "RDS".into(),
        metadata,
        idempotency_token: "run-20261121-restore_db".into(),
    };
    let id = aws.start_restore_job(REGION, &req).await.unwrap();
    assert_eq!(id, "8C7A6B5D-4E3F-2A1B-0C9D-8E7F6A5B4C3D");
    let running = aws.describe_restore_job(REGION, &id).await.unwrap();
    assert_eq!((running.status.as_str(), running.percent), ("RUNNING", 42));
    assert_eq!(running.created_resource_arn, None);
    let done = aws.describe_restore_job(REGION, &id).await.unwrap();
    assert_eq!((done.status.as_str(), done.percent), ("COMPLETED", 100));
    assert_eq!(done.created_resource_arn.as_deref(), Some("arn:aws:rds:us-west-2:111111111111:db:crosssell-dr"));
    let log = log.lock().unwrap();
    let start = log.iter().find(|s| s.method == "PUT").expect("a StartRestoreJob request");
    let body: serde_json::Value = serde_json::from_str(&start.body).unwrap();
    assert_eq!(body["IdempotencyToken"], "run-20261121-restore_db");
    assert_eq!(body["Metadata"]["DBInstanceIdentifier"], "crosssell-dr");
    assert_eq!(body["ResourceType"], "RDS");
    // the account was checked before the restore was started
    let sts = log.iter().position(|s| s.body.contains("Action=GetCallerIdentity")).expect("an STS call");
    let put = log.iter().position(|s| s.method == "PUT").unwrap();
    assert!(sts < put, "GetCallerIdentity comes before StartRestoreJob");
}

#[tokio::test]
async fn backup_errors_keep_service_operation_code_message_and_request_id() {
    let (aws, _log) = recorded(
        None,
        Arc::new(|_s: &Seen| {
            (
                400,
                vec![
                    ("content-type", "application/json".into()),
                    (
                        "x-amzn-errortype",
                        "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.cryo/".into(),
                    ),
                    ("x-amzn-requestid", "0e2f4d6b-8a9c-4b1d-9e3f-5a7c9e1b3d5f".into()),
                ],
                r#"{"Code":"ResourceNotFoundException","Message":"Restore job 42 not found","Type":"User"}"#.into(),
            )
        }),
    )
    .await;
    let e = aws.describe_restore_job(REGION, "42").await.unwrap_err();
    assert_eq!(e.service, "backup");
    assert_eq!(e.operation, "DescribeRestoreJob");
    assert_eq!(e.region, REGION);
    assert_eq!(e.code, "ResourceNotFoundException");
    assert_eq!(e.message, "Restore job 42 not found");
    assert_eq!(e.request_id.as_deref(), Some("0e2f4d6b-8a9c-4b1d-9e3f-5a7c9e1b3d5f"));
    assert!(e.is_not_found() && !e.is_retryable() && !e.is_throttling());
    let shown = e.to_string();
    assert!(shown.contains("backup DescribeRestoreJob") && shown.contains("ResourceNotFoundException"), "{shown}");
}

const REFRESHES: &str = r#"<DescribeInstanceRefreshesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeInstanceRefreshesResult>
    <InstanceRefreshes>
      <member>
        <InstanceRefreshId>c5c8e2d1-0b7a-4f3e-9d6c-2b1a0f9e8d7c</InstanceRefreshId>
        <AutoScalingGroupName>cross-sell-asg</AutoScalingGroupName>
        <Status>Successful</Status>
        <StartTime>2026-11-20T01:00:00Z</StartTime>
        <EndTime>2026-11-20T01:20:00Z</EndTime>
        <PercentageComplete>100</PercentageComplete>
        <InstancesToUpdate>0</InstancesToUpdate>
      </member>
      <member>
        <InstanceRefreshId>08b91cf7-8fa6-48af-b6a6-d227f40f1b9b</InstanceRefreshId>
        <AutoScalingGroupName>cross-sell-asg</AutoScalingGroupName>
        <Status>InProgress</Status>
        <StatusReason>Waiting for instances to warm up before continuing. For example: i-0645704820a8e83ff is warming up.</StatusReason>
        <StartTime>2026-11-21T03:05:00Z</StartTime>
        <PercentageComplete>50</PercentageComplete>
        <InstancesToUpdate>1</InstancesToUpdate>
      </member>
    </InstanceRefreshes>
  </DescribeInstanceRefreshesResult>
  <ResponseMetadata><RequestId>6e2b8a4c-0d1f-4e3a-9b5c-7d8e9f0a1b2c</RequestId></ResponseMetadata>
</DescribeInstanceRefreshesResponse>"#;

#[tokio::test]
async fn instance_refresh_in_progress_is_followed_not_restarted() {
    let (aws, log) = recorded(
        None,
        Arc::new(|s: &Seen| {
            if s.body.contains("Action=DescribeInstanceRefreshes") {
                xml(REFRESHES)
            } else {
                (500, vec![], "unexpected".into())
            }
        }),
    )
    .await;
    let refreshes = aws.describe_instance_refreshes(REGION, "cross-sell-asg").await.unwrap();
    assert_eq!(refreshes.len(), 2);
    assert_eq!(refreshes[0].id, "08b91cf7-8fa6-48af-b6a6-d227f40f1b9b", "newest first");
    assert_eq!((refreshes[0].status.as_str(), refreshes[0].percent), ("InProgress", 50));
    let id = aws.start_instance_refresh(REGION, "cross-sell-asg", 90).await.unwrap();
    assert_eq!(id, "08b91cf7-8fa6-48af-b6a6-d227f40f1b9b");
    let log = log.lock().unwrap();
    assert!(!log.iter().any(|s| s.body.contains("Action=StartInstanceRefresh")), "no second refresh is started");
    assert!(log.iter().all(|s| s.body.contains("AutoScalingGroupName=cross-sell-asg")));
}

#[tokio::test]
async fn instance_refresh_starts_when_none_runs() {
    let (aws, log) = recorded(
        None,
        Arc::new(|s: &Seen| {
            if s.body.contains("Action=GetCallerIdentity") {
                xml(CALLER_111)
            } else if s.body.contains("Action=DescribeInstanceRefreshes") {
                xml(
                    r#"<DescribeInstanceRefreshesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeInstanceRefreshesResult><InstanceRefreshes/></DescribeInstanceRefreshesResult>
  <ResponseMetadata><RequestId>1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d</RequestId></ResponseMetadata>
</DescribeInstanceRefreshesResponse>"#,
                )
            } else {
                xml(
                    r#"<StartInstanceRefreshResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <StartInstanceRefreshResult><InstanceRefreshId>9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a</InstanceRefreshId></StartInstanceRefreshResult>
  <ResponseMetadata><RequestId>2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e</RequestId></ResponseMetadata>
</StartInstanceRefreshResponse>"#,
                )
            }
        }),
    )
    .await;
    let id = aws.start_instance_refresh(REGION, "cross-sell-asg", 90).await.unwrap();
    assert_eq!(id, "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a");
    let log = log.lock().unwrap();
    let start = log.iter().find(|s| s.body.contains("Action=StartInstanceRefresh")).expect("a start request");
    assert!(start.body.contains("Preferences.MinHealthyPercentage=90"), "{}", start.body);
}

#[tokio::test]
async fn throttling_is_classified_after_the_sdk_retries() {
    let (aws, log) = recorded(
        None,
        Arc::new(|_s: &Seen| {
            (
                400,
                // AWS sends the request id both in the x-amzn-RequestId header and in the body
                vec![
                    ("content-type", "text/xml".into()),
                    ("x-amzn-requestid", "3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f".into()),
                ],
                r#"<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>
  <RequestId>3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f</RequestId>
</ErrorResponse>"#
                    .into(),
            )
        }),
    )
    .await;
    let e = aws.describe_instance_refreshes(REGION, "cross-sell-asg").await.unwrap_err();
    assert_eq!(log.lock().unwrap().len(), 2, "the SDK retried the throttled call (max attempts 2 here)");
    assert_eq!(
        (e.service.as_str(), e.operation.as_str(), e.code.as_str()),
        ("autoscaling", "DescribeInstanceRefreshes", "Throttling")
    );
    assert_eq!(e.message, "Rate exceeded");
    assert_eq!(e.request_id.as_deref(), Some("3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f"));
    assert!(e.is_throttling() && e.is_retryable());
}

#[tokio::test]
async fn account_guard_refuses_changes_in_another_account_and_sends_nothing() {
    let (aws, log) = recorded(
        Some("222222222222"),
        Arc::new(|s: &Seen| {
            if s.body.contains("Action=GetCallerIdentity") {
                xml(CALLER_111)
            } else {
                xml(r#"<DescribeInstanceRefreshesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeInstanceRefreshesResult><InstanceRefreshes/></DescribeInstanceRefreshesResult>
  <ResponseMetadata><RequestId>1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d</RequestId></ResponseMetadata>
</DescribeInstanceRefreshesResponse>"#)
            }
        }),
    )
    .await;
    let id = aws.get_caller_identity(REGION).await.unwrap();
    assert_eq!(id.account, "111111111111");
    assert_eq!(id.arn, "arn:aws:sts::111111111111:assumed-role/DrOperator/jane.doe");
    let e = aws.start_instance_refresh(REGION, "cross-sell-asg", 90).await.unwrap_err();
    assert_eq!(e.code, ACCOUNT_MISMATCH);
    assert!(e.message.contains("111111111111") && e.message.contains("222222222222"), "{}", e.message);
    assert!(!e.is_retryable());
    let log = log.lock().unwrap();
    assert_eq!(log.iter().filter(|s| s.body.contains("Action=GetCallerIdentity")).count(), 1, "STS is asked once");
    assert!(!log.iter().any(|s| s.body.contains("Action=StartInstanceRefresh")), "nothing was changed");
}

fn rds_error(status: u16, code: &str, message: &str) -> (u16, Vec<(&'static str, String)>, String) {
    (
        status,
        vec![("content-type", "text/xml".into()), ("x-amzn-requestid", "7d3f1e2a-9b8c-4d5e-a6f7-0b1c2d3e4f5a".into())],
        format!(
            r#"<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>7d3f1e2a-9b8c-4d5e-a6f7-0b1c2d3e4f5a</RequestId>
</ErrorResponse>"#
        ),
    )
}

#[tokio::test]
async fn capacity_errors_are_retryable_on_aws_as_on_the_simulator() {
    let (aws, log) = recorded(
        None,
        Arc::new(|s: &Seen| {
            if s.body.contains("Action=GetCallerIdentity") {
                xml(CALLER_111)
            } else if s.body.contains("Action=DescribeDBInstances") {
                rds_error(404, "DBInstanceNotFound", "DBInstance crosssell-prod-dr not found.")
            } else {
                rds_error(
                    400,
                    "InsufficientDBInstanceCapacity",
                    "Cannot create a database instance because there is no capacity for the requested class \
                     db.r6g.xlarge in the Availability Zone us-west-2a. Try another Availability Zone or try again later.",
                )
            }
        }),
    )
    .await;
    let req = RestoreDbFromSnapshot {
        instance_id: "crosssell-prod-dr".into(),
        snapshot_id: "crosssell-prod-dr-copy".into(),
        class: Some("db.r6g.xlarge".into()),
        ..RestoreDbFromSnapshot::default()
    };
    let e = aws.restore_db_from_snapshot(REGION, &req).await.unwrap_err();
    assert_eq!(
        (e.operation.as_str(), e.code.as_str()),
        ("RestoreDBInstanceFromDBSnapshot", "InsufficientDBInstanceCapacity")
    );
    assert_eq!(e.kind, ErrorKind::Capacity);
    assert!(e.is_retryable(), "capacity comes back: the engine retries the step");
    assert!(e.message.contains("db.r6g.xlarge"), "{}", e.message);
    // the simulator's injected faults go through the same classifier
    assert_eq!(classify(&e.code, None), ErrorKind::Capacity);
    assert_eq!(classify("InsufficientInstanceCapacity", None), ErrorKind::Capacity);
    let action_error = drconsole::actions::kit::cerr(e);
    assert!(action_error.retryable(), "{action_error:?}");
    let log = log.lock().unwrap();
    let restores = log.iter().filter(|s| s.body.contains("Action=RestoreDBInstanceFromDBSnapshot")).count();
    assert_eq!(restores, 1, "the SDK does not retry it; the step's retries do, minutes later");
}

/// DescribeDBSnapshots in us-west-2 for a cross-region copy made half an hour after its source (recorded shape).
const COPIED_DB_SNAPSHOT: &str = r#"<DescribeDBSnapshotsResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">
  <DescribeDBSnapshotsResult>
    <DBSnapshots>
      <DBSnapshot>
        <DBSnapshotIdentifier>crosssell-prod-2026-12-01-21-00</DBSnapshotIdentifier>
        <DBSnapshotArn>arn:aws:rds:us-west-2:111111111111:snapshot:crosssell-prod-2026-12-01-21-00</DBSnapshotArn>
        <DBInstanceIdentifier>crosssell-prod</DBInstanceIdentifier>
        <SnapshotCreateTime>2026-12-01T21:31:12.345Z</SnapshotCreateTime>
        <OriginalSnapshotCreateTime>2026-12-01T21:00:04.120Z</OriginalSnapshotCreateTime>
        <SnapshotType>manual</SnapshotType>
        <Status>available</Status>
        <PercentProgress>100</PercentProgress>
        <Engine>postgres</Engine>
        <EngineVersion>16.4</EngineVersion>
        <AllocatedStorage>500</AllocatedStorage>
        <Encrypted>true</Encrypted>
        <KmsKeyId>arn:aws:kms:us-west-2:111111111111:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b</KmsKeyId>
        <SourceRegion>us-east-1</SourceRegion>
        <SourceDBSnapshotIdentifier>arn:aws:rds:us-east-1:111111111111:snapshot:rds:crosssell-prod-2026-12-01-21-00</SourceDBSnapshotIdentifier>
        <TagList><Tag><Key>app</Key><Value>cross-sell</Value></Tag></TagList>
      </DBSnapshot>
    </DBSnapshots>
  </DescribeDBSnapshotsResult>
  <ResponseMetadata><RequestId>4b5c6d7e-8f9a-4b0c-9d1e-2f3a4b5c6d7e</RequestId></ResponseMetadata>
</DescribeDBSnapshotsResponse>"#;

#[tokio::test]
async fn an_rds_copy_is_as_old_as_its_source_original_snapshot_create_time() {
    let (aws, _log) = recorded(None, Arc::new(|_s: &Seen| xml(COPIED_DB_SNAPSHOT))).await;
    let q =
        DbSnapshotQuery { instance_id: Some("crosssell-prod".into()), include_automated: true, ..Default::default() };
    let snaps = aws.describe_db_snapshots(REGION, &q).await.unwrap();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].created.to_string(), "2026-12-01T21:00:04.12Z", "the source's time, not the copy's 21:31:12");
    assert_eq!(
        snaps[0].source_arn.as_deref(),
        Some("arn:aws:rds:us-east-1:111111111111:snapshot:rds:crosssell-prod-2026-12-01-21-00")
    );
    // and the picker computes the RPO from it
    let cloud = aws.into_cloud();
    let p = drconsole::actions::Params(
        serde_json::json!({"source": "rds", "resource": "crosssell-prod"}).as_object().unwrap().clone(),
    );
    let cands = drconsole::actions::recovery_point::candidates(&cloud, &p, "rds", REGION).await.unwrap();
    assert_eq!(cands.len(), 1);
    assert_eq!(cands[0].time.to_string(), "2026-12-01T21:00:04.12Z");
}

/// ListBackupVaults in us-west-2: the DR vault AWS Backup copy jobs write into (recorded shape).
const DR_VAULTS: &str = r#"{"BackupVaultList":[
 {"BackupVaultArn":"arn:aws:backup:us-west-2:111111111111:backup-vault:dr-vault","BackupVaultName":"dr-vault",
  "CreationDate":1.7636904E9,"CreatorRequestId":"7d2c9f0e-dr-vault",
  "EncryptionKeyArn":"arn:aws:kms:us-west-2:111111111111:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
  "Locked":false,"NumberOfRecoveryPoints":4}]}"#;

/// ListRecoveryPointsByBackupVault of dr-vault: the copy of the database's 22:00 backup (its resource ARN names
/// the source database in us-east-1), a PARTIAL one, another database's and a volume's (recorded shape).
const DR_VAULT_POINTS: &str = r#"{"RecoveryPoints":[
 {"BackupSizeInBytes":536870912000,"BackupVaultArn":"arn:aws:backup:us-west-2:111111111111:backup-vault:dr-vault",
  "BackupVaultName":"dr-vault","CompletionDate":1.7961642E9,"CreationDate":1.7961624E9,
  "EncryptionKeyArn":"arn:aws:kms:us-west-2:111111111111:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
  "IamRoleArn":"arn:aws:iam::111111111111:role/service-role/AWSBackupDefaultServiceRole","IsEncrypted":true,
  "IsParent":false,
  "RecoveryPointArn":"arn:aws:rds:us-west-2:111111111111:snapshot:awsbackup:copyjob-1f2e3d4c-5b6a-4789-9a0b-1c2d3e4f5a6b",
  "ResourceArn":"arn:aws:rds:us-east-1:111111111111:db:crosssell-prod","ResourceName":"crosssell-prod",
  "ResourceType":"RDS",
  "SourceBackupVaultArn":"arn:aws:backup:us-east-1:111111111111:backup-vault:prod-hourly","Status":"COMPLETED",
  "VaultType":"BACKUP_VAULT"},
 {"BackupSizeInBytes":536870912000,"BackupVaultName":"dr-vault","CreationDate":1.796166E9,"IsEncrypted":true,
  "RecoveryPointArn":"arn:aws:rds:us-west-2:111111111111:snapshot:awsbackup:copyjob-2a3b4c5d-6e7f-4081-9a2b-3c4d5e6f7a8b",
  "ResourceArn":"arn:aws:rds:us-east-1:111111111111:db:crosssell-prod","ResourceType":"RDS","Status":"PARTIAL"},
 {"BackupSizeInBytes":107374182400,"BackupVaultName":"dr-vault","CreationDate":1.7961624E9,"IsEncrypted":true,
  "RecoveryPointArn":"arn:aws:rds:us-west-2:111111111111:snapshot:awsbackup:copyjob-3b4c5d6e-7f80-4192-8a3b-4c5d6e7f8a9b",
  "ResourceArn":"arn:aws:rds:us-east-1:111111111111:db:inventory-prod","ResourceType":"RDS","Status":"COMPLETED"},
 {"BackupSizeInBytes":214748364800,"BackupVaultName":"dr-vault","CreationDate":1.7961624E9,"IsEncrypted":true,
  "RecoveryPointArn":"arn:aws:ec2:us-west-2::snapshot/snap-0c1d2e3f4a5b6c7d8",
  "ResourceArn":"arn:aws:ec2:us-east-1:111111111111:volume/vol-0a1b2c3d4e5f60718","ResourceType":"EBS",
  "Status":"COMPLETED"}]}"#;

#[tokio::test]
async fn rds_recovery_points_include_aws_backup_copies_timed_by_their_creation_date() {
    let respond = |s: &Seen| {
        if s.body.contains("Action=DescribeDBSnapshots") {
            xml(COPIED_DB_SNAPSHOT)
        } else if s.path.starts_with("/backup-vaults/dr-vault/recovery-points") {
            json(DR_VAULT_POINTS)
        } else if s.path.starts_with("/backup-vaults") {
            json(DR_VAULTS)
        } else {
            (404, Vec::new(), String::new())
        }
    };
    let (aws, log) = recorded(None, Arc::new(respond)).await;
    let cloud = aws.into_cloud();
    let p = drconsole::actions::Params(
        serde_json::json!({"source": "rds", "resource": "crosssell-prod", "engine": "postgres"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let cands = drconsole::actions::recovery_point::candidates(&cloud, &p, "rds", REGION).await.unwrap();
    let ids: Vec<&str> = cands.iter().map(|c| c.id.as_str()).collect();
    // the Backup copy first (most trusted), then the snapshot copy; not the PARTIAL one, another database's or a
    // volume's
    assert_eq!(
        ids,
        ["awsbackup:copyjob-1f2e3d4c-5b6a-4789-9a0b-1c2d3e4f5a6b", "crosssell-prod-2026-12-01-21-00"],
        "{cands:?}"
    );
    let b = &cands[0];
    assert_eq!(b.time.to_string(), "2026-12-01T22:00:00Z", "the recovery point's creation date");
    assert_eq!(b.kind, "rds-snapshot");
    assert_eq!(
        b.arn.as_deref(),
        Some("arn:aws:rds:us-west-2:111111111111:snapshot:awsbackup:copyjob-1f2e3d4c-5b6a-4789-9a0b-1c2d3e4f5a6b")
    );
    assert!(b.source.contains("arn:aws:rds:us-east-1:111111111111:db:crosssell-prod"), "{}", b.source);
    assert!(b.source.contains("dr-vault"), "{}", b.source);
    assert!(b.encrypted);
    assert_eq!(cands[1].time.to_string(), "2026-12-01T21:00:04.12Z", "OriginalSnapshotCreateTime");
    {
        let log = log.lock().unwrap();
        assert!(log.iter().any(|s| s.method == "GET" && s.path.starts_with("/backup-vaults/dr-vault/recovery-points")));
    }
    // the chosen recovery point is found by its id again (rds.copy_snapshot, rds.restore_snapshot): AWS lists the
    // snapshots AWS Backup keeps only when asked for their type
    let q = DbSnapshotQuery { snapshot_id: Some(b.id.clone()), include_automated: true, ..Default::default() };
    cloud.rds.describe_db_snapshots(REGION, &q).await.unwrap();
    let log = log.lock().unwrap();
    let by_id = log.last().unwrap();
    assert!(by_id.body.contains("SnapshotType=awsbackup"), "{}", by_id.body);
    assert!(by_id.body.contains("DBSnapshotIdentifier=awsbackup%3Acopyjob-1f2e3d4c"), "{}", by_id.body);
}

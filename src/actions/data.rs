//! DynamoDB import from a time-stamped S3 export, and the cloud checks (target health, DNS record → ALB, RDS TCP).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::kit::{POLL_SLOW, c, fqdn, outs, region, s, token, u32_param, wait_state};
use super::spec::{ActionSpec, Effect, ParamKind as K, ParamSpec as P, out};
use super::{Action, ActionCtx, ActionError, Outputs, Params};
use crate::cloud::ImportTable;

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(ImportS3), Arc::new(TargetHealth), Arc::new(RecordPointsToAlb), Arc::new(RdsTcp)]
}

struct ImportS3;
static IMPORT: ActionSpec = ActionSpec {
    name: "dynamodb.import_s3",
    summary: "Import a time-stamped S3 export into a new DynamoDB table; wait until COMPLETED",
    params: &[
        P::req("bucket", K::Str, "the bucket (the replica in the restore region)"),
        P::req("prefix", K::Str, "the export's key prefix (a recovery point id from source = \"s3\")"),
        P::req("table", K::Str, "the new table's name (its idempotency key)"),
        P::req("partition_key", K::Str, "the partition key attribute (string)"),
        P::opt("sort_key", K::Str, "the sort key attribute (string)"),
        P::opt("format", K::Str, "DYNAMODB_JSON (default), ION, CSV"),
        P::opt("region", K::Region, "default: secondary"),
        P::opt("kms_key", K::Str, "KMS key for the table"),
    ],
    outputs: &[out("table_arn", "the table ARN"), out("item_count", "items imported"), out("import_arn", "the import")],
    iam: &[
        "dynamodb:ImportTable",
        "dynamodb:DescribeImport",
        "dynamodb:DescribeTable",
        "dynamodb:CreateTable",
        "dynamodb:UpdateTable",
        "dynamodb:PutItem",
        "dynamodb:BatchWriteItem",
        "s3:GetObject",
        "s3:ListBucket",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "kms:Decrypt",
    ],
    expected_secs: 900,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for ImportS3 {
    fn spec(&self) -> &'static ActionSpec {
        &IMPORT
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "dynamodb:ImportTable s3://{}/{} ({}) → table {} (key {}); wait COMPLETED",
            p.text("bucket").unwrap_or_default(),
            p.text("prefix").unwrap_or_default(),
            p.text("format").unwrap_or_else(|_| "DYNAMODB_JSON".into()),
            p.text("table").unwrap_or_default(),
            p.text("partition_key").unwrap_or_default()
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = region(ctx, p)?;
        let (bucket, prefix, table) = (p.str("bucket")?, p.str("prefix")?, p.str("table")?);
        let import_arn = match c(cloud.dynamodb.describe_table(&region, table)).await? {
            Some(t) => {
                ctx.resource("found", "dynamodb-table", table, &region, &t.status);
                t.import_arn.ok_or_else(|| {
                    ActionError::fatal(format!(
                        "table {table} exists in {region} and was not made by an import: choose another name"
                    ))
                })?
            }
            None => {
                ctx.resource("creating", "dynamodb-table", table, &region, "");
                let req = ImportTable {
                    client_token: token(&[table, bucket, prefix]),
                    table_name: table.into(),
                    bucket: bucket.into(),
                    bucket_owner: None,
                    key_prefix: prefix.into(),
                    input_format: p.opt_str("format")?.unwrap_or("DYNAMODB_JSON").into(),
                    partition_key: p.str("partition_key")?.into(),
                    sort_key: p.opt_str("sort_key")?.map(str::to_string),
                    kms_key_id: p.opt_str("kms_key")?.map(str::to_string),
                    tags: ctx.tags(),
                };
                let d = c(cloud.dynamodb.import_table(&region, &req)).await?;
                ctx.resource("created", "dynamodb-import", &d.arn, &region, &d.status);
                d.arn
            }
        };
        let arn = import_arn.clone();
        let last_items = std::sync::atomic::AtomicU64::new(0);
        wait_state(
            ctx,
            "dynamodb-import",
            &arn,
            &region,
            POLL_SLOW,
            &["COMPLETED"],
            &["FAILED", "CANCELLED"],
            || async {
                let d = cloud.dynamodb.describe_import(&region, &arn).await?;
                if d.imported_items != last_items.swap(d.imported_items, std::sync::atomic::Ordering::Relaxed) {
                    ctx.progress(format!("{} items imported", d.imported_items), None);
                }
                Ok((d.status, None))
            },
        )
        .await?;
        let t = c(cloud.dynamodb.describe_table(&region, table))
            .await?
            .ok_or_else(|| ActionError::fatal(format!("table {table} disappeared")))?;
        Ok(outs(&[("table_arn", s(t.arn)), ("item_count", Value::from(t.item_count)), ("import_arn", s(import_arn))]))
    }
}

struct TargetHealth;
static TARGET_HEALTH: ActionSpec = ActionSpec {
    name: "check.target_health",
    summary: "Check that a target group has at least N healthy targets (waits up to `within`)",
    params: &[
        P::req("target_group_arn", K::Str, "the target group"),
        P::opt("min_healthy", K::Int, "default 1"),
        P::opt("within", K::Duration, "how long to wait for them (default 5m)"),
        P::opt("region", K::Region, "default: secondary"),
    ],
    outputs: &[out("healthy", "healthy targets")],
    iam: &["elasticloadbalancing:DescribeTargetHealth"],
    expected_secs: 15,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for TargetHealth {
    fn spec(&self) -> &'static ActionSpec {
        &TARGET_HEALTH
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "elbv2:DescribeTargetHealth {}: at least {} healthy",
            p.text("target_group_arn").unwrap_or_default(),
            p.text("min_healthy").unwrap_or_else(|_| "1".into())
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = region(ctx, p)?;
        let want = u32_param(p, "min_healthy", 1)? as usize;
        let within = p.opt_duration("within")?.unwrap_or(Duration::from_secs(300));
        let tg = p.str("target_group_arn")?;
        let waited =
            tokio::time::timeout(ctx.clock.real(within), super::network::wait_targets(ctx, cloud, &region, tg, want))
                .await;
        match waited {
            Ok(r) => Ok(outs(&[("healthy", Value::from(r?))])),
            Err(_) => Err(ActionError::transient(format!(
                "fewer than {want} healthy targets in {tg} after {}",
                crate::util::fmt_duration(within)
            ))),
        }
    }
}

struct RecordPointsToAlb;
static RECORD_ALB: ActionSpec = ActionSpec {
    name: "check.record_points_to_alb",
    summary: "Check that a Route 53 record is an alias to the given load balancer (reads the zone, not a resolver cache)",
    params: &[
        P::req("zone", K::Str, "the hosted zone name"),
        P::req("record", K::Str, "the record name"),
        P::req("alb_dns", K::Str, "the load balancer's DNS name"),
        P::opt("set_identifier", K::Str, "for failover/weighted records"),
    ],
    outputs: &[out("target", "the alias target")],
    iam: &["route53:ListHostedZonesByName", "route53:ListResourceRecordSets"],
    expected_secs: 5,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for RecordPointsToAlb {
    fn spec(&self) -> &'static ActionSpec {
        &RECORD_ALB
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "route53:ListResourceRecordSets {}: alias → {}",
            p.text("record").unwrap_or_default(),
            p.text("alb_dns").unwrap_or_default()
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let z = super::route53::zone(cloud, p.str("zone")?).await?;
        let name = fqdn(p.str("record")?);
        let want = fqdn(&p.str("alb_dns")?.to_ascii_lowercase());
        let sid = p.opt_str("set_identifier")?;
        let recs = c(cloud.route53.list_record_sets(&z.id, &name)).await?;
        let targets: Vec<String> = recs
            .iter()
            .filter(|r| sid.is_none_or(|s| r.set_identifier.as_deref() == Some(s)))
            .filter_map(|r| r.alias.as_ref().map(|a| a.dns_name.to_ascii_lowercase()))
            .collect();
        if targets.iter().any(|t| *t == want || t.trim_start_matches("dualstack.") == want) {
            return Ok(outs(&[("target", s(want))]));
        }
        Err(ActionError::transient(format!(
            "{name} points to {}, not {want}",
            if targets.is_empty() { "no alias".to_string() } else { targets.join(", ") }
        )))
    }
}

struct RdsTcp;
static RDS_TCP: ActionSpec = ActionSpec {
    name: "check.rds_tcp",
    summary: "Check that an RDS instance is available and its endpoint accepts TCP connections",
    params: &[P::req("instance", K::Str, "the DB instance id"), P::opt("region", K::Region, "default: secondary")],
    outputs: &[out("endpoint", "host:port that accepted the connection")],
    iam: &["rds:DescribeDBInstances"],
    expected_secs: 10,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for RdsTcp {
    fn spec(&self) -> &'static ActionSpec {
        &RDS_TCP
    }
    fn plan(&self, p: &Params) -> String {
        format!("rds:DescribeDBInstances {} then TCP connect to its endpoint", p.text("instance").unwrap_or_default())
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = region(ctx, p)?;
        let id = p.str("instance")?;
        let d = c(cloud.rds.describe_db_instance(&region, id))
            .await?
            .ok_or_else(|| ActionError::fatal(format!("DB instance {id} not found in {region}")))?;
        if d.status != "available" {
            return Err(ActionError::transient(format!("DB instance {id} is {}, not available", d.status)));
        }
        let host = d.endpoint.ok_or_else(|| ActionError::transient(format!("DB instance {id} has no endpoint yet")))?;
        let addr = format!("{host}:{}", d.port);
        if cloud.backend == "sim" {
            // the simulator's endpoints are not on the network: an available instance accepts connections
            ctx.progress(format!("simulated: {addr} accepts connections"), None);
            return Ok(outs(&[("endpoint", s(addr))]));
        }
        let connect =
            tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect((host.as_str(), d.port)));
        tokio::select! {
            r = connect => {
                r.map_err(|_| ActionError::transient(format!("connect to {addr} timed out")))?
                    .map_err(|e| ActionError::transient(format!("connect to {addr}: {e}")))?;
            }
            () = ctx.cancel.cancelled() => return Err(ActionError::cancelled()),
        }
        Ok(outs(&[("endpoint", s(addr))]))
    }
}

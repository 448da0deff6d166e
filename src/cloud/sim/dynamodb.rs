//! DynamoDB in the simulator: tables, global table replicas and point-in-time recovery.

use async_trait::async_trait;

use super::{Sim, SimImport, Timeline, bad, nf};
use crate::cloud::*;

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

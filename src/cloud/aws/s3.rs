//! S3: listing objects under a prefix (exports, replicated time-stamped keys). Path-style addressing is used when
//! an endpoint URL is set (see `Clients::s3`).

use async_trait::async_trait;

use super::Aws;
use super::convert::ts;
use super::error::from_sdk;
use crate::cloud::{CloudResult, S3, S3Object};

const SVC: &str = "s3";

#[async_trait]
impl S3 for Aws {
    async fn list_objects(&self, region: &str, bucket: &str, prefix: &str) -> CloudResult<Vec<S3Object>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .s3(region)
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send()
            .collect()
            .await;
        let pages = r.map_err(|e| from_sdk(SVC, "ListObjectsV2", region, e))?;
        Ok(pages
            .iter()
            .flat_map(|p| p.contents().iter())
            .map(|o| S3Object {
                key: o.key().unwrap_or_default().to_string(),
                size_bytes: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                last_modified: ts(o.last_modified()),
                // every S3 object has been encrypted at rest (SSE-S3 at least) since January 2023
                encrypted: true,
            })
            .collect())
    }
}

//! S3 in the simulator: buckets and their replication.

use async_trait::async_trait;

use super::{Sim, nf};
use crate::cloud::*;

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

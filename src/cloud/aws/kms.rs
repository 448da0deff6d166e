//! KMS: DescribeKey (by id, ARN or alias), for preflight's "the key is there and enabled" check.

use async_trait::async_trait;

use super::Aws;
use super::error::from_sdk;
use crate::cloud::{CloudResult, Kms, KmsKey};

const SVC: &str = "kms";

#[async_trait]
impl Kms for Aws {
    async fn describe_key(&self, region: &str, key: &str) -> CloudResult<Option<KmsKey>> {
        match self.clients.kms(region).describe_key().key_id(key).send().await {
            Ok(out) => Ok(out.key_metadata().map(|m| KmsKey {
                id: m.key_id().to_string(),
                arn: m.arn().unwrap_or_default().to_string(),
                state: m.key_state().map(|s| s.as_str().to_string()).unwrap_or_default(),
            })),
            Err(e) => {
                let e = from_sdk(SVC, "DescribeKey", region, e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }
}

//! KMS in the simulator: every key or alias asked for exists in the world's regions (one key per region, as the
//! provisioned encrypted resources use), enabled unless the world file lists it in `disabled_kms_keys`.

use async_trait::async_trait;

use super::Sim;
use crate::cloud::{CloudResult, Kms, KmsKey};

#[async_trait]
impl Kms for Sim {
    async fn describe_key(&self, region: &str, key: &str) -> CloudResult<Option<KmsKey>> {
        self.call("kms", "DescribeKey", region).await?;
        let w = self.lock();
        let id = format!("{:032x}", super::hash_of(&(w.seed, region, "kms")));
        let arn = w.arn("kms", region, &format!("key/{id}"));
        let disabled = w.settings.disabled_kms_keys.iter().any(|k| k == key || *k == arn || *k == id);
        Ok(Some(KmsKey { id, arn, state: if disabled { "Disabled" } else { "Enabled" }.into() }))
    }
}

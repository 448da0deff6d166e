//! Secrets Manager (credentials used during a restore) and STS (who the credentials belong to).

use async_trait::async_trait;

use super::Aws;
use super::error::from_sdk;
use crate::cloud::{CallerIdentity, CloudError, CloudResult, SecretValue, SecretsManager, Sts};

#[async_trait]
impl SecretsManager for Aws {
    async fn get_secret_value(&self, region: &str, id: &str) -> CloudResult<SecretValue> {
        const OP: &str = "GetSecretValue";
        let out = self
            .clients
            .secretsmanager(region)
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| from_sdk("secretsmanager", OP, region, e))?;
        let value = out.secret_string().map(str::to_string).ok_or_else(|| {
            CloudError::new(
                "secretsmanager",
                OP,
                region,
                "BinarySecret",
                format!("secret {id} holds binary data, not text"),
            )
        })?;
        Ok(SecretValue {
            arn: out.arn().unwrap_or_default().to_string(),
            name: out.name().unwrap_or(id).to_string(),
            value,
        })
    }
}

#[async_trait]
impl Sts for Aws {
    /// Asked once per run (the account guard remembers it); `region` is ignored after the first call.
    async fn get_caller_identity(&self, _region: &str) -> CloudResult<CallerIdentity> {
        let id = self.guard().identity().await?;
        Ok(CallerIdentity { account: id.account.clone(), arn: id.arn.clone(), user_id: id.user_id.clone() })
    }
}

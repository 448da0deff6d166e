//! Secrets Manager and STS in the simulator.

use async_trait::async_trait;

use super::{Sim, nf};
use crate::cloud::*;

#[async_trait]
impl SecretsManager for Sim {
    async fn get_secret_value(&self, region: &str, id: &str) -> CloudResult<SecretValue> {
        self.call("secretsmanager", "GetSecretValue", region).await?;
        let mut w = self.lock();
        let r = w.now_region(region);
        r.secrets.get(id).or_else(|| r.secrets.values().find(|s| s.arn == id || s.name == id)).cloned().ok_or_else(
            || {
                nf(
                    "secretsmanager",
                    "GetSecretValue",
                    region,
                    "ResourceNotFoundException",
                    format!("Secrets Manager can't find the specified secret: {id}"),
                )
            },
        )
    }
}

#[async_trait]
impl Sts for Sim {
    async fn get_caller_identity(&self, region: &str) -> CloudResult<CallerIdentity> {
        self.call("sts", "GetCallerIdentity", region).await?;
        let w = self.lock();
        let a = w.settings.account.clone();
        Ok(CallerIdentity {
            arn: format!("arn:aws:sts::{a}:assumed-role/DrconsoleSimulator/tabletop"),
            user_id: "AROASIMULATOR:tabletop".into(),
            account: a,
        })
    }
}

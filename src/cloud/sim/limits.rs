//! Account limits in the simulator: the world's Elastic IP limit per region (`elastic_ip_limit`, default 5).

use async_trait::async_trait;

use super::Sim;
use crate::cloud::{CloudResult, Limits};

#[async_trait]
impl Limits for Sim {
    async fn elastic_ip_limit(&self, region: &str) -> CloudResult<Option<u32>> {
        self.call("ec2", "DescribeAccountAttributes", region).await?;
        Ok(Some(self.lock().settings.elastic_ip_limit))
    }
}

//! Account limits EC2 tells: DescribeAccountAttributes (`vpc-max-elastic-ips`).

use async_trait::async_trait;
use aws_sdk_ec2::types::AccountAttributeName;

use super::Aws;
use super::error::from_sdk;
use crate::cloud::{CloudResult, Limits};

#[async_trait]
impl Limits for Aws {
    async fn elastic_ip_limit(&self, region: &str) -> CloudResult<Option<u32>> {
        let out = self
            .clients
            .ec2(region)
            .describe_account_attributes()
            .attribute_names(AccountAttributeName::from("vpc-max-elastic-ips"))
            .send()
            .await
            .map_err(|e| from_sdk("ec2", "DescribeAccountAttributes", region, e))?;
        Ok(out
            .account_attributes()
            .iter()
            .filter(|a| a.attribute_name() == Some("vpc-max-elastic-ips"))
            .flat_map(|a| a.attribute_values())
            .find_map(|v| v.attribute_value().and_then(|x| x.parse().ok())))
    }
}

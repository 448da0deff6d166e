//! The port's deletes on AWS (`drconsole cleanup`).

use async_trait::async_trait;

use super::Aws;
use crate::cloud::cleanup::{Cleanup, Found};
use crate::cloud::{CloudError, CloudResult};

fn unsupported(region: &str, what: &str) -> CloudError {
    CloudError::new(
        "tagging",
        what,
        region,
        "NotImplemented",
        "drconsole cleanup is not available on AWS yet: remove the run's resources by their drconsole:run-id tag",
    )
}

#[async_trait]
impl Cleanup for Aws {
    async fn tagged(&self, region: &str, _key: &str, _value: &str) -> CloudResult<Vec<Found>> {
        Err(unsupported(region, "GetResources"))
    }
    async fn describe(&self, region: &str, _kind: &str, _id: &str) -> CloudResult<Option<Found>> {
        Err(unsupported(region, "Describe"))
    }
    async fn delete(&self, region: &str, _kind: &str, _id: &str) -> CloudResult<()> {
        Err(unsupported(region, "Delete"))
    }
}

//! WAFv2: regional web ACLs and their association with a load balancer.

use async_trait::async_trait;
use aws_sdk_wafv2::types::Scope;

use super::Aws;
use super::error::from_sdk;
use crate::cloud::{CloudResult, Waf, WebAcl};

const SVC: &str = "wafv2";

#[async_trait]
impl Waf for Aws {
    async fn get_web_acl(&self, region: &str, name: &str) -> CloudResult<Option<WebAcl>> {
        // ListWebACLs pages with NextMarker and has no paginator in the SDK
        let client = self.clients.wafv2(region);
        let mut marker: Option<String> = None;
        loop {
            let out = client
                .list_web_acls()
                .scope(Scope::Regional)
                .limit(100)
                .set_next_marker(marker.clone())
                .send()
                .await
                .map_err(|e| from_sdk(SVC, "ListWebACLs", region, e))?;
            if let Some(a) = out.web_acls().iter().find(|a| a.name() == Some(name)) {
                return Ok(Some(WebAcl {
                    id: a.id().unwrap_or_default().to_string(),
                    name: name.to_string(),
                    arn: a.arn().unwrap_or_default().to_string(),
                    scope: "REGIONAL".into(),
                }));
            }
            marker = out.next_marker().filter(|m| !m.is_empty() && out.web_acls().len() == 100).map(str::to_string);
            if marker.is_none() {
                return Ok(None);
            }
        }
    }

    async fn get_web_acl_for_resource(&self, region: &str, resource_arn: &str) -> CloudResult<Option<WebAcl>> {
        let r = self.clients.wafv2(region).get_web_acl_for_resource().resource_arn(resource_arn).send().await;
        match r {
            Ok(out) => Ok(out.web_acl().map(|a| WebAcl {
                id: a.id().to_string(),
                name: a.name().to_string(),
                arn: a.arn().to_string(),
                scope: "REGIONAL".into(),
            })),
            Err(e) => {
                let e = from_sdk(SVC, "GetWebACLForResource", region, e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    async fn associate_web_acl(&self, region: &str, web_acl_arn: &str, resource_arn: &str) -> CloudResult<()> {
        const OP: &str = "AssociateWebACL";
        // no lookup first: waf.associate asked GetWebACLForResource, and associating the web ACL a resource
        // already has changes nothing
        self.allow_change(SVC, OP, region).await?;
        self.clients
            .wafv2(region)
            .associate_web_acl()
            .web_acl_arn(web_acl_arn)
            .resource_arn(resource_arn)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        Ok(())
    }
}

//! ACM: DescribeCertificate, for preflight's "the listener's certificate exists in the secondary region, is issued
//! and covers the record's name" check.

use async_trait::async_trait;

use super::Aws;
use super::error::from_sdk;
use crate::cloud::{Acm, Certificate, CloudResult};

const SVC: &str = "acm";

#[async_trait]
impl Acm for Aws {
    async fn describe_certificate(&self, region: &str, arn: &str) -> CloudResult<Option<Certificate>> {
        match self.clients.acm(region).describe_certificate().certificate_arn(arn).send().await {
            Ok(out) => Ok(out.certificate().map(|c| {
                let domain = c.domain_name().unwrap_or_default().to_string();
                let mut names = vec![domain.clone()];
                names.extend(c.subject_alternative_names().iter().filter(|n| **n != domain).cloned());
                Certificate {
                    arn: c.certificate_arn().unwrap_or(arn).to_string(),
                    domain,
                    names,
                    status: c.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    not_after: c.not_after().and_then(|t| jiff::Timestamp::new(t.secs(), 0).ok()),
                }
            })),
            Err(e) => {
                let e = from_sdk(SVC, "DescribeCertificate", region, e);
                // an ARN of another region or account: ValidationException / ResourceNotFoundException
                if e.is_not_found() || e.code == "ResourceNotFoundException" { Ok(None) } else { Err(e) }
            }
        }
    }
}

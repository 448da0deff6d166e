//! ACM in the simulator: every certificate ARN asked for exists in its own region, `ISSUED`, for the world's
//! hosted zones (each zone and `*.zone`), valid for a year from now, unless the world file lists it in
//! `missing_certificates`. An ARN of another region is not found there, as on AWS.

use async_trait::async_trait;

use super::Sim;
use crate::cloud::{Acm, Certificate, CloudResult};

#[async_trait]
impl Acm for Sim {
    async fn describe_certificate(&self, region: &str, arn: &str) -> CloudResult<Option<Certificate>> {
        self.call("acm", "DescribeCertificate", region).await?;
        let w = self.lock();
        let arn_region = arn.split(':').nth(3).unwrap_or_default();
        if arn_region != region || w.settings.missing_certificates.iter().any(|m| m == arn) {
            return Ok(None);
        }
        let mut names = Vec::new();
        for z in w.zones.values() {
            let zone = z.name.trim_end_matches('.');
            names.push(format!("*.{zone}"));
            names.push(zone.to_string());
        }
        let domain = names.first().cloned().unwrap_or_default();
        let not_after = self.clock.now().checked_add(jiff::SignedDuration::from_hours(24 * 365)).ok();
        Ok(Some(Certificate { arn: arn.to_string(), domain, names, status: "ISSUED".into(), not_after }))
    }
}

//! IAM: SimulatePrincipalPolicy, for preflight's "the caller may make every call of the runbook" check. The
//! simulation evaluates the principal's policies; it changes nothing (a read, though its name is no Describe).

use async_trait::async_trait;

use super::Aws;
use super::error::from_sdk;
use crate::cloud::{CloudResult, Iam, SimulatedDecision};

const SVC: &str = "iam";

#[async_trait]
impl Iam for Aws {
    async fn simulate_principal_policy(
        &self,
        principal_arn: &str,
        actions: &[String],
        region: &str,
    ) -> CloudResult<Vec<SimulatedDecision>> {
        let mut out = Vec::new();
        // the API takes at most 128 action names per call
        for chunk in actions.chunks(100) {
            // one result per action (no resources given): 100 actions fit in one page of up to 1000
            let mut req =
                self.clients.iam().simulate_principal_policy().policy_source_arn(principal_arn).max_items(1000);
            // an evaluation, not a step of the recovery: two attempts, not the run's eight (where the API is
            // missing, as on an emulator, the answer "not checked" comes at once)
            let retry = aws_config::retry::RetryConfig::standard().with_max_attempts(2);
            for a in chunk {
                req = req.action_names(a);
            }
            if !region.is_empty() {
                req = req.context_entries(
                    aws_sdk_iam::types::ContextEntry::builder()
                        .context_key_name("aws:RequestedRegion")
                        .context_key_type(aws_sdk_iam::types::ContextKeyTypeEnum::String)
                        .context_key_values(region)
                        .build(),
                );
            }
            let page = req
                .customize()
                .config_override(aws_sdk_iam::config::Builder::default().retry_config(retry))
                .send()
                .await
                .map_err(|e| from_sdk(SVC, "SimulatePrincipalPolicy", "", e))?;
            out.extend(page.evaluation_results().iter().map(|r| SimulatedDecision {
                action: r.eval_action_name().to_string(),
                decision: r.eval_decision().as_str().to_string(),
            }));
        }
        Ok(out)
    }
}

//! Preflight's reads that moto server does not emulate, on recorded responses (the way aws_recorded.rs serves
//! them: an in-process HTTP client answers each request in the real service's wire format): IAM
//! SimulatePrincipalPolicy (moto answers 500), Service Quotas for EC2's vCPUs (moto knows only VPC quotas), and
//! Elastic Load Balancing's account limits. The parsing is the adapter's; a denied action becomes a `fail`
//! finding that names it, through the whole preflight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use crate::replay::infallible_client_fn;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_types::body::SdkBody;

use drconsole::actions::Registry;
use drconsole::cloud::aws::{Aws, Clients};
use drconsole::cloud::sim::Sim;
use drconsole::cloud::{Cloud, Iam, Limits};
use drconsole::preflight::{self, ReadOnlyCloud, Status, Verdict};
use drconsole::run::Clock;

const REGION: &str = "us-west-2";

type Responder = dyn Fn(&str, &str) -> (u16, &'static str, String) + Send + Sync;

/// An adapter whose every call is answered by `respond(path, body)`; the request bodies are kept.
async fn recorded(respond: Arc<Responder>) -> (Aws, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let http = infallible_client_fn(move |req: http::Request<SdkBody>| {
        let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
        let mut body = req.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        if let Some(t) = req.headers().get("x-amz-target") {
            body = format!("{} {body}", t.to_str().unwrap_or_default());
        }
        log2.lock().unwrap().push(body.clone());
        let (status, ctype, text) = respond(&path, &body);
        http::Response::builder()
            .status(status)
            .header("content-type", ctype)
            .header("x-amzn-requestid", "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE")
            .body(SdkBody::from(text))
            .unwrap()
    });
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_sts::config::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"))
        .http_client(http)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .load()
        .await;
    (Aws::new(Arc::new(Clients::from_config(conf)), REGION, None), log)
}

/// `ActionNames.member.N` of a SimulatePrincipalPolicy request (query protocol, form-encoded).
fn action_names(body: &str) -> Vec<String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| k.starts_with("ActionNames.member."))
        .map(|(_, v)| v.replace("%3A", ":"))
        .collect()
}

/// A SimulatePrincipalPolicy answer (recorded shape) where `denied` is not allowed by any statement.
fn simulation(body: &str, denied: &str) -> (u16, &'static str, String) {
    let members: String = action_names(body)
        .iter()
        .map(|a| {
            let decision = if a == denied { "implicitDeny" } else { "allowed" };
            let matched = if a == denied {
                String::new()
            } else {
                "<MatchedStatements><member><SourcePolicyId>DrOperator</SourcePolicyId><SourcePolicyType>IAM Policy</SourcePolicyType></member></MatchedStatements>".to_string()
            };
            format!(
                "<member>{matched}<MissingContextValues/><EvalResourceName>*</EvalResourceName><EvalDecision>{decision}</EvalDecision><EvalActionName>{a}</EvalActionName></member>"
            )
        })
        .collect();
    (
        200,
        "text/xml",
        format!(
            r#"<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <SimulatePrincipalPolicyResult>
    <IsTruncated>false</IsTruncated>
    <EvaluationResults>{members}</EvaluationResults>
  </SimulatePrincipalPolicyResult>
  <ResponseMetadata><RequestId>004d7059-4c14-11e5-b121-bd8c7EXAMPLE</RequestId></ResponseMetadata>
</SimulatePrincipalPolicyResponse>"#
        ),
    )
}

#[tokio::test]
async fn a_simulated_policy_s_decisions_are_parsed_per_action() {
    let (aws, log) = recorded(Arc::new(|_, body| simulation(body, "ec2:CreateNatGateway"))).await;
    let actions = vec!["ec2:CreateNatGateway".to_string(), "ec2:DescribeVpcs".to_string()];
    let d = aws.simulate_principal_policy("arn:aws:iam::111111111111:role/DrOperator", &actions, REGION).await.unwrap();
    let got: Vec<(&str, &str)> = d.iter().map(|d| (d.action.as_str(), d.decision.as_str())).collect();
    assert_eq!(got, vec![("ec2:CreateNatGateway", "implicitDeny"), ("ec2:DescribeVpcs", "allowed")]);
    let body = log.lock().unwrap()[0].clone();
    assert!(body.contains("Action=SimulatePrincipalPolicy"), "{body}");
    assert!(body.contains("PolicySourceArn=arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2FDrOperator"), "{body}");
    assert!(
        body.contains("aws%3ARequestedRegion") && body.contains("us-west-2"),
        "the region is in the context: {body}"
    );
}

/// The whole preflight of a failover on the simulator, with IAM answered by the AWS adapter on the recorded
/// simulation: the one denied action is a `fail` finding naming it, and the verdict is not ready.
#[tokio::test(start_paused = true)]
async fn a_denied_action_in_the_simulation_is_a_fail_finding_naming_it() {
    let registry = Registry::builtin();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/cross-sell.toml");
    let mut rb = drconsole::runbook::load(&path, &registry).unwrap_or_else(|d| panic!("{d}"));
    rb.target.backend = drconsole::runbook::Backend::Sim;
    let now: jiff::Timestamp = "2026-11-21T12:00:00Z".parse().unwrap();
    let world = drconsole::cloud::sim::WorldFile::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preflight/good-order.toml"),
    )
    .unwrap();
    let sim = Arc::new(Sim::for_runbook(Clock::starting_at(now, 1.0), 3, &rb, Some(&world)));
    let (aws, log) = recorded(Arc::new(|_, body| simulation(body, "rds:RestoreDBInstanceFromDBSnapshot"))).await;
    let mut cloud = Cloud::from_all("sim", sim.clone());
    cloud.iam = Arc::new(aws);
    let ro = ReadOnlyCloud::new(cloud);
    let r = preflight::run(&rb, &registry, &ro, now).await;
    let iam: Vec<_> = r.findings.iter().filter(|f| f.check.contains("may make every call of the runbook")).collect();
    assert_eq!(iam.len(), 1, "{:#?}", r.findings);
    assert_eq!(iam[0].status, Status::Fail);
    assert_eq!(iam[0].found, "denied: rds:RestoreDBInstanceFromDBSnapshot (implicitDeny)");
    assert!(iam[0].todo.contains("drconsole iam-policy"), "{:?}", iam[0]);
    assert_eq!(r.verdict, Verdict::NotReady);
    // every action of the generated policy was asked about, in one call
    let policy = drconsole::iam::policy(&rb, &registry);
    let n =
        policy["Statement"].as_array().unwrap().iter().flat_map(|s| s["Action"].as_array().unwrap().clone()).count();
    let asked = action_names(&log.lock().unwrap()[0]);
    assert!(asked.len() <= n && asked.len() > 10, "{asked:?}");
    assert!(asked.iter().any(|a| a == "rds:RestoreDBInstanceFromDBSnapshot"), "{asked:?}");
    assert!(r.refused_calls.is_empty(), "{:?}", r.refused_calls);
}

const QUOTA_VCPUS: &str = r#"{"Quota":{"ServiceCode":"ec2","ServiceName":"Amazon Elastic Compute Cloud (Amazon EC2)",
 "QuotaArn":"arn:aws:servicequotas:us-west-2:111111111111:ec2/L-1216C47A","QuotaCode":"L-1216C47A",
 "QuotaName":"Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances","Value":1152.0,"Unit":"None",
 "Adjustable":true,"GlobalQuota":false,"UsageMetric":{"MetricNamespace":"AWS/Usage","MetricName":"ResourceCount",
 "MetricDimensions":{"Class":"Standard/OnDemand","Resource":"vCPU","Service":"EC2","Type":"Resource"},
 "MetricStatisticRecommendation":"Maximum"},"QuotaAppliedAtLevel":"ACCOUNT"}}"#;

const LIMITS: &str = r#"<DescribeAccountLimitsResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
  <DescribeAccountLimitsResult>
    <Limits>
      <member><Name>target-groups</Name><Max>3000</Max></member>
      <member><Name>application-load-balancers</Name><Max>50</Max></member>
      <member><Name>network-load-balancers</Name><Max>50</Max></member>
    </Limits>
  </DescribeAccountLimitsResult>
  <ResponseMetadata><RequestId>2d5e1b8f-2f3a-11e9-a3a2-8d2fEXAMPLE</RequestId></ResponseMetadata>
</DescribeAccountLimitsResponse>"#;

#[tokio::test]
async fn service_quotas_and_load_balancer_limits_are_parsed_and_an_unknown_quota_is_none() {
    let (aws, log) = recorded(Arc::new(|_, body| {
        if body.contains("GetServiceQuota") && body.contains("L-1216C47A") {
            (200, "application/x-amz-json-1.1", QUOTA_VCPUS.to_string())
        } else if body.contains("GetServiceQuota") {
            (
                400,
                "application/x-amz-json-1.1",
                r#"{"__type":"NoSuchResourceException","Message":"The request failed because the specified service does not exist."}"#.to_string(),
            )
        } else if body.contains("Action=DescribeAccountLimits") {
            (200, "text/xml", LIMITS.to_string())
        } else {
            (400, "text/xml", format!("unexpected request {body}"))
        }
    }))
    .await;
    assert_eq!(aws.service_quota(REGION, "ec2", "L-1216C47A").await.unwrap(), Some(1152.0));
    assert_eq!(aws.service_quota(REGION, "vpc", "L-NOPE0000").await.unwrap(), None, "NoSuchResourceException");
    assert_eq!(aws.elb_limit(REGION, "application-load-balancers").await.unwrap(), Some(50));
    assert_eq!(aws.elb_limit(REGION, "gateway-load-balancers").await.unwrap(), None, "not in the answer");
    let log = log.lock().unwrap();
    assert!(log[0].contains("ServiceQuotasV20190624.GetServiceQuota"), "{}", log[0]);
    assert!(log[0].contains(r#""ServiceCode":"ec2""#) && log[0].contains(r#""QuotaCode":"L-1216C47A""#), "{}", log[0]);
}

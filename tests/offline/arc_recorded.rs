//! Route 53 ARC routing controls (`route53.routing_control`, preflight's check of them) on the AWS adapter with
//! recorded responses: moto server does not emulate ARC's cluster data plane (`route53-recovery-cluster`), so an
//! in-process HTTP client answers each request in the service's wire format (awsJson 1.0, as recorded from the
//! real endpoints), per cluster endpoint: a routing control's state lives here, one endpoint's region answers 503
//! (an impaired region), and the region circuits of the adapter's HTTP client see every attempt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::replay::infallible_client_fn;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_types::body::SdkBody;

use drconsole::actions::Registry;
use drconsole::cloud::Cloud;
use drconsole::cloud::aws::{Aws, Clients};
use drconsole::cloud::health::{HealthConfig, RegionHealth};
use drconsole::engine::{Clock, Command, Engine, EventKind, Outcome, RunConfig};

const WEST: &str = "arn:aws:route53-recovery-control::111111111111:controlpanel/0123456789abcdef0123456789abcdef/routingcontrol/abcdefabcdef0123";
const EAST: &str = "arn:aws:route53-recovery-control::111111111111:controlpanel/0123456789abcdef0123456789abcdef/routingcontrol/0123abcdefabcdef";
const EP_EAST: &str = "https://host-dsfc5i.route53-recovery-cluster.us-east-1.amazonaws.com/v1";
const EP_EU: &str = "https://host-dsfc5i.route53-recovery-cluster.eu-west-1.amazonaws.com/v1";
const EP_WEST: &str = "https://host-dsfc5i.route53-recovery-cluster.us-west-2.amazonaws.com/v1";

const CALLER: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::111111111111:assumed-role/DrOperator/jane.doe</Arn>
    <UserId>AROA3XFRBF535PLBIFPI4:jane.doe</UserId>
    <Account>111111111111</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#;

/// A request as the cluster endpoint saw it.
#[derive(Debug, Clone)]
struct Seen {
    host: String,
    target: String,
    /// The SigV4 credential scope's region.
    signed_for: String,
    body: String,
}

/// The recorded cluster: routing controls by ARN (name, state); endpoints whose host names a region in `down`
/// answer 503 EndpointTemporarilyUnavailableException.
struct Cluster {
    controls: Mutex<BTreeMap<String, (String, String)>>,
    down: Vec<&'static str>,
    log: Mutex<Vec<Seen>>,
}

impl Cluster {
    fn new(down: Vec<&'static str>) -> Arc<Self> {
        let mut controls = BTreeMap::new();
        controls.insert(WEST.to_string(), ("cell-us-west-2".to_string(), "Off".to_string()));
        controls.insert(EAST.to_string(), ("cell-us-east-1".to_string(), "On".to_string()));
        Arc::new(Self { controls: Mutex::new(controls), down, log: Mutex::new(Vec::new()) })
    }
    fn to(&self, region: &str) -> Vec<Seen> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.host.contains(&format!("route53-recovery-cluster.{region}.")))
            .cloned()
            .collect()
    }
    fn answer(&self, s: &Seen) -> (u16, String) {
        if s.host.starts_with("sts.") {
            // the account guard's identity, asked once before the first change
            return (200, CALLER.into());
        }
        if self.down.iter().any(|r| s.host.contains(&format!(".{r}."))) {
            return (
                503,
                r#"{"__type":"EndpointTemporarilyUnavailableException","message":"The cluster endpoint is temporarily unavailable."}"#.into(),
            );
        }
        let body: serde_json::Value = serde_json::from_str(&s.body).unwrap_or_default();
        let mut controls = self.controls.lock().unwrap();
        match s.target.as_str() {
            "ToggleCustomerAPI.GetRoutingControlState" => {
                let arn = body["RoutingControlArn"].as_str().unwrap_or_default();
                match controls.get(arn) {
                    Some((name, state)) => (
                        200,
                        serde_json::json!({"RoutingControlArn": arn, "RoutingControlState": state, "RoutingControlName": name})
                            .to_string(),
                    ),
                    None => (
                        404,
                        serde_json::json!({"__type":"ResourceNotFoundException","message":format!("Routing control {arn} not found"),"resourceId":arn,"resourceType":"RoutingControl"}).to_string(),
                    ),
                }
            }
            "ToggleCustomerAPI.UpdateRoutingControlStates" => {
                for e in body["UpdateRoutingControlStateEntries"].as_array().cloned().unwrap_or_default() {
                    let arn = e["RoutingControlArn"].as_str().unwrap_or_default();
                    if let Some(c) = controls.get_mut(arn) {
                        c.1 = e["RoutingControlState"].as_str().unwrap_or_default().to_string();
                    }
                }
                (200, "{}".into())
            }
            other => (400, format!(r#"{{"__type":"UnknownOperationException","message":"{other}"}}"#)),
        }
    }
}

/// The adapter on the recorded cluster, its requests through circuits (as `Clients::load` installs them).
async fn adapter(cluster: Arc<Cluster>, health: Arc<RegionHealth>, clock: &Clock) -> Cloud {
    let c2 = cluster.clone();
    let http = infallible_client_fn(move |req: http::Request<SdkBody>| {
        let header = |k: &str| req.headers().get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let auth = header("authorization");
        let seen = Seen {
            host: req.uri().host().unwrap_or_default().to_string(),
            target: header("x-amz-target"),
            signed_for: auth.split("Credential=").nth(1).and_then(|s| s.split('/').nth(2)).unwrap_or_default().into(),
            body: req.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
        };
        c2.log.lock().unwrap().push(seen.clone());
        let (status, body) = c2.answer(&seen);
        http::Response::builder()
            .status(status)
            .header(
                "content-type",
                if seen.host.starts_with("sts.") { "text/xml" } else { "application/x-amz-json-1.0" },
            )
            .header("x-amzn-requestid", "3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b")
            .body(SdkBody::from(body))
            .unwrap()
    });
    let paced = drconsole::cloud::aws::pace::Paced::with(http, None, Some(health.clone()), clock.clone());
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-west-2"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"))
        .http_client(paced)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    let mut clients = Clients::from_config(conf);
    clients.health = Some(health);
    Aws::new(Arc::new(clients), "us-west-2", None).into_cloud()
}

fn runbook(endpoints: &[&str], drill: bool) -> drconsole::runbook::Runbook {
    let list = endpoints.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", ");
    let mode = if drill { "mode = \"drill\"\n" } else { "" };
    let text = format!(
        r#"[runbook]
name = "arc-cut-over"
title = "Cross-sell: traffic to us-west-2 by routing controls"
app = "cross-sell"
rto = "2h"
rpo = "1h"
{mode}
[target]
backend = "aws"
primary = "us-east-1"
secondary = "us-west-2"

[[step]]
id = "cut_over"
title = "Turn us-west-2's cell on and us-east-1's off"
action = "route53.routing_control"
[step.with]
cluster_endpoints = [{list}]
on = ["{WEST}"]
off = ["{EAST}"]
"#
    );
    drconsole::runbook::load_str(Path::new("arc.toml"), &text, &Registry::builtin()).unwrap_or_else(|d| panic!("{d}"))
}

struct Ran {
    outcome: Outcome,
    events: Vec<EventKind>,
}

impl Ran {
    fn outputs(&self) -> serde_json::Map<String, serde_json::Value> {
        self.events
            .iter()
            .find_map(|k| match k {
                EventKind::StepSucceeded { outputs, .. } => Some(outputs.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("the step did not succeed: {:?}", self.events))
    }
    fn failed(&self) -> Option<String> {
        self.events.iter().find_map(|k| match k {
            EventKind::StepFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
    }
    fn progress(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|k| match k {
                EventKind::StepProgress { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}

async fn run(rb: &drconsole::runbook::Runbook, cloud: Cloud, clock: Clock) -> Ran {
    let cfg = RunConfig { run_id: "arc-test".into(), cloud: Some(Arc::new(cloud)), ..RunConfig::default() };
    let mut h = Engine::spawn(Arc::new(rb.clone()), Registry::builtin(), cfg, clock);
    let mut events = Vec::new();
    while let Some(ev) = h.events.recv().await {
        let cmd = match &ev.kind {
            EventKind::StepAwaitingApproval { step, .. } => {
                Some(Command::Approve { step: step.clone(), by: "test".into() })
            }
            EventKind::RunPaused { reason } => Some(Command::Abort { reason: reason.clone(), by: "test".into() }),
            _ => None,
        };
        let done = matches!(ev.kind, EventKind::RunFinished { .. });
        events.push(ev.kind);
        if let Some(c) = cmd {
            let _ = h.commands.send(c);
        }
        if done {
            break;
        }
    }
    let result = h.join.await.unwrap();
    Ran { outcome: result.outcome, events }
}

fn setup(down: Vec<&'static str>) -> (Arc<Cluster>, Arc<RegionHealth>, Clock) {
    let clock = Clock::starting_at("2026-12-07T03:12:00Z".parse().unwrap(), 1.0);
    let health = RegionHealth::new(HealthConfig::default(), clock.clone());
    (Cluster::new(down), health, clock)
}

/// us-east-1's endpoint answers 503, eu-west-1's region is known unreachable (its circuit open): the routing
/// controls are read and set at us-west-2's endpoint; eu-west-1's gets no request at all; the states are read back.
/// A second run finds them as asked and changes nothing.
#[tokio::test]
async fn routing_controls_are_set_at_the_first_endpoint_that_answers_skipping_an_unreachable_region() {
    let (cluster, health, clock) = setup(vec!["us-east-1"]);
    health.open("eu-west-1", "5 failures in a row, the last: connection refused".into());
    let rb = runbook(&[EP_EAST, EP_EU, EP_WEST], false);
    let r = run(&rb, adapter(cluster.clone(), health.clone(), &clock).await, clock.clone()).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{:?}", r.failed());
    let out = r.outputs();
    assert_eq!(out["endpoint"], "us-west-2");
    assert_eq!(out["changed"], "true");
    assert_eq!(out["states"], "cell-us-west-2=On, cell-us-east-1=Off");
    {
        let controls = cluster.controls.lock().unwrap();
        assert_eq!(controls[WEST].1, "On");
        assert_eq!(controls[EAST].1, "Off");
    }
    assert!(
        cluster.to("eu-west-1").is_empty(),
        "an open circuit's endpoint is skipped unsent: {:?}",
        cluster.to("eu-west-1")
    );
    // us-east-1: the first read, its two attempts (the SDK's retry), then the next endpoint
    let east = cluster.to("us-east-1");
    assert_eq!(east.len(), 2, "{east:?}");
    assert!(east.iter().all(|s| s.target == "ToggleCustomerAPI.GetRoutingControlState"), "{east:?}");
    let west = cluster.to("us-west-2");
    let ops: Vec<&str> = west.iter().map(|s| s.target.trim_start_matches("ToggleCustomerAPI.")).collect();
    assert_eq!(
        ops,
        [
            "GetRoutingControlState",
            "GetRoutingControlState",
            "UpdateRoutingControlStates",
            "GetRoutingControlState",
            "GetRoutingControlState"
        ]
    );
    assert!(west.iter().all(|s| s.signed_for == "us-west-2"), "each endpoint is signed for its region: {west:?}");
    assert!(east.iter().all(|s| s.signed_for == "us-east-1"), "{east:?}");
    let update: serde_json::Value = serde_json::from_str(&west[2].body).unwrap();
    assert_eq!(update["UpdateRoutingControlStateEntries"].as_array().unwrap().len(), 2, "one batch: {update}");
    assert!(update.get("SafetyRulesToOverride").is_none(), "no override unless asked: {update}");
    let progress = r.progress();
    assert!(progress.iter().any(|m| m.contains("us-east-1") && m.contains("trying the next")), "{progress:?}");
    assert!(
        progress.iter().any(|m| m.contains("eu-west-1 skipped: unreachable since") && m.contains("connection refused")),
        "{progress:?}"
    );

    // again: already as asked, nothing sent but reads
    let before = cluster.log.lock().unwrap().len();
    let r = run(&rb, adapter(cluster.clone(), health.clone(), &clock).await, clock).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{:?}", r.failed());
    assert_eq!(r.outputs()["changed"], "false");
    let log = cluster.log.lock().unwrap();
    assert!(
        log[before..].iter().all(|s| s.target.ends_with("GetRoutingControlState") || s.host.starts_with("sts.")),
        "{:?}",
        &log[before..]
    );
}

/// An answer that is an error (a routing control that does not exist) is the same at every endpoint: the step
/// fails at once naming it, without trying the others; with every endpoint down, it fails naming each one.
#[tokio::test]
async fn an_answered_error_is_not_tried_elsewhere_and_no_endpoint_answering_names_each() {
    let (cluster, health, clock) = setup(vec![]);
    cluster.controls.lock().unwrap().remove(EAST);
    let rb = runbook(&[EP_WEST, EP_EAST], false);
    let r = run(&rb, adapter(cluster.clone(), health.clone(), &clock).await, clock.clone()).await;
    assert_ne!(r.outcome, Outcome::Recovered);
    let e = r.failed().unwrap();
    assert!(e.contains("us-west-2 answered") && e.contains("ResourceNotFoundException"), "{e}");
    assert!(cluster.to("us-east-1").is_empty(), "{:?}", cluster.to("us-east-1"));

    let (cluster, health, clock) = setup(vec!["us-east-1", "us-west-2"]);
    let rb = runbook(&[EP_WEST, EP_EAST], false);
    let r = run(&rb, adapter(cluster.clone(), health, &clock).await, clock).await;
    let e = r.failed().unwrap();
    assert!(e.contains("no cluster endpoint answered") && e.contains("us-west-2:") && e.contains("us-east-1:"), "{e}");
    assert_eq!(cluster.controls.lock().unwrap()[WEST].1, "Off", "nothing changed");
}

/// A drill never moves production traffic: the step is refused before any call.
#[tokio::test]
async fn a_drill_refuses_to_set_routing_controls() {
    let (cluster, health, clock) = setup(vec![]);
    let rb = runbook(&[EP_WEST], true);
    let r = run(&rb, adapter(cluster.clone(), health, &clock).await, clock).await;
    assert_eq!(r.outcome, Outcome::Refused, "{:?}", r.failed());
    assert!(cluster.log.lock().unwrap().is_empty(), "{:?}", cluster.log.lock().unwrap());
}

/// Preflight reads each routing control at the first endpoint that answers and reports its state and the state the
/// step sets; an endpoint that did not answer is a warning; nothing is changed.
#[tokio::test]
async fn preflight_reports_the_routing_controls_and_the_endpoints_that_did_not_answer() {
    let (cluster, health, clock) = setup(vec!["us-east-1"]);
    let rb = runbook(&[EP_EAST, EP_WEST], false);
    let aws = adapter(cluster.clone(), health, &clock).await;
    let sim = Arc::new(drconsole::cloud::sim::Sim::for_runbook(clock.clone(), 3, &rb, None));
    let mut cloud = Cloud::from_all("sim", sim);
    cloud.routing_controls = aws.routing_controls.clone();
    let ro = drconsole::preflight::ReadOnlyCloud::new(cloud);
    let r = drconsole::preflight::run(&rb, &Registry::builtin(), &ro, clock.now()).await;
    let f = r.findings.iter().find(|f| f.check == "Route 53 ARC routing controls").unwrap();
    assert_eq!(f.status, drconsole::preflight::Status::Ok, "{f:?}");
    assert_eq!(
        f.found,
        "ready: cell-us-west-2 Off (the step sets On), cell-us-east-1 On (the step sets Off) (read at the cluster \
         endpoint in us-west-2)"
    );
    let w = r.findings.iter().find(|f| f.check == "Route 53 ARC cluster endpoints").unwrap();
    assert_eq!(w.status, drconsole::preflight::Status::Warn, "{w:?}");
    assert!(w.found.contains("us-east-1") && w.found.contains("EndpointTemporarilyUnavailableException"), "{w:?}");
    assert!(cluster.log.lock().unwrap().iter().all(|s| s.target.ends_with("GetRoutingControlState")));
    assert!(r.findings.iter().all(|f| !f.check.starts_with("control-plane")), "no control plane: {:#?}", r.findings);
}

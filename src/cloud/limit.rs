//! AWS API rate limits as token buckets: one bucket per API class, shared by every application of a process.
//!
//! AWS meters most control-plane APIs with a token bucket per account and region: a bucket holds up to `burst`
//! tokens, refills at `rate` tokens a second, and a call that finds it empty is throttled
//! (`RequestLimitExceeded` on EC2, `Throttling` on RDS and Route 53); Route 53's buckets are per account (the API
//! is global), the others per account and region ([`scope`]). The defaults are AWS's documented ones
//! ([`Limits::aws_defaults`]); an incident file's `[limits]` table overrides them for accounts with raised limits.
//!
//! Two users: the client-side [`RateLimiter`] makes a call wait for a token before it goes out (so a process never
//! exceeds the limits however many applications it runs), and the simulator meters the same buckets on its side
//! ([`Buckets::try_take`]) and throttles what exceeds them, so the effect of the limiter can be measured.
//! Rules: time is the run clock's (simulated time on the simulator); no call waits longer than its bucket needs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;

use crate::run::Clock;

/// One bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Limit {
    pub burst: u32,
    /// Tokens per second.
    pub rate: f64,
}

/// The buckets by API class, and whether the client-side limiter is on.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub limiter: bool,
    pub classes: BTreeMap<String, Limit>,
}

impl Limits {
    /// AWS's documented defaults (EC2 API request throttling; RDS; Route 53 quotas).
    pub fn aws_defaults() -> Self {
        let l = |burst, rate| Limit { burst, rate };
        let classes = [
            ("ec2.mutating", l(50, 5.0)),
            ("ec2.non-mutating", l(100, 20.0)),
            ("ec2.CreateNatGateway", l(10, 1.0)),
            ("ec2.CopyImage", l(100, 1.0)),
            ("rds", l(300, 12.0)),
            ("route53", l(50, 10.0)),
            ("route53.CreateHealthCheck", l(50, 0.5)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Self { limiter: true, classes }
    }
}

/// The API class of a call (`None`: not metered here).
pub fn class(service: &str, op: &str) -> Option<String> {
    match service {
        "ec2" => Some(match op {
            "CreateNatGateway" | "CopyImage" => format!("ec2.{op}"),
            _ if is_read(op) => "ec2.non-mutating".into(),
            _ => "ec2.mutating".into(),
        }),
        "rds" => Some("rds".into()),
        "route53" if op == "CreateHealthCheck" => Some("route53.CreateHealthCheck".into()),
        "route53" => Some("route53".into()),
        _ => None,
    }
}

/// The bucket a call of `class` in `region` takes from: AWS meters EC2 and RDS per account and region, so each
/// region has its own bucket (`ec2.mutating@us-west-2`); Route 53 is global, one bucket per account.
pub fn scope(class: &str, region: &str) -> String {
    if class.starts_with("route53") || region.is_empty() { class.to_string() } else { format!("{class}@{region}") }
}

fn is_read(op: &str) -> bool {
    ["Describe", "List", "Get"].iter().any(|p| op.starts_with(p))
}

fn secs(t: Timestamp) -> f64 {
    t.as_nanosecond() as f64 / 1e9
}

#[derive(Debug, Clone)]
struct Bucket {
    limit: Limit,
    tokens: f64,
    at: f64,
}

impl Bucket {
    fn take(&mut self, now: f64) -> Result<(), Duration> {
        let dt = (now - self.at).max(0.0);
        self.tokens = (self.tokens + dt * self.limit.rate).min(f64::from(self.limit.burst));
        self.at = now.max(self.at);
        // a token within rounding of whole counts: the client's limiter refills in several steps (each failed
        // try), AWS's side in one, and the two sums may differ in the last bit
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            return Ok(());
        }
        Err(Duration::from_secs_f64(((1.0 - self.tokens) / self.limit.rate).max(0.001)))
    }
}

/// Token buckets by class, full at first use.
#[derive(Debug)]
pub struct Buckets {
    limits: Limits,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    pub fn new(limits: Limits) -> Self {
        Self { limits, buckets: Mutex::new(HashMap::new()) }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes a token for a call of `class` in `region` at `now` (from that region's bucket, or the account's for
    /// a global API: [`scope`]); `Err(wait)`: the bucket is empty, a token comes in `wait`.
    pub fn try_take(&self, class: &str, region: &str, now: Timestamp) -> Result<(), Duration> {
        let Some(limit) = self.limits.classes.get(class).copied() else { return Ok(()) };
        let now = secs(now);
        let mut m = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(scope(class, region)).or_insert(Bucket { limit, tokens: f64::from(limit.burst), at: now }).take(now)
    }
}

/// The client side: a call waits for its bucket's token before it is sent. One per process, shared by every
/// application of an incident.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Buckets,
    waits: AtomicU64,
    waited_ms: AtomicU64,
}

impl RateLimiter {
    pub fn new(limits: Limits) -> Self {
        Self { buckets: Buckets::new(limits), waits: AtomicU64::new(0), waited_ms: AtomicU64::new(0) }
    }

    /// Waits (in run time) until a call of `service`/`op` in `region` may go out.
    pub async fn acquire(&self, clock: &Clock, service: &str, op: &str, region: &str) {
        let Some(class) = class(service, op) else { return };
        let mut waited = false;
        while let Err(wait) = self.buckets.try_take(&class, region, clock.now()) {
            if !waited {
                waited = true;
                self.waits.fetch_add(1, Ordering::Relaxed);
            }
            self.waited_ms.fetch_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
            clock.sleep(wait).await;
        }
    }

    /// How many calls had to wait, and for how long in all.
    pub fn waited(&self) -> (u64, Duration) {
        (self.waits.load(Ordering::Relaxed), Duration::from_millis(self.waited_ms.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate() {
        let b = Buckets::new(Limits::aws_defaults());
        let t0 = Timestamp::UNIX_EPOCH;
        for _ in 0..10 {
            assert!(b.try_take("ec2.CreateNatGateway", "us-west-2", t0).is_ok());
        }
        let wait = b.try_take("ec2.CreateNatGateway", "us-west-2", t0).err().unwrap_or_default();
        assert_eq!(wait, Duration::from_secs(1));
        let t1 = t0.saturating_add(jiff::SignedDuration::from_secs(1)).unwrap_or(t0);
        assert!(b.try_take("ec2.CreateNatGateway", "us-west-2", t1).is_ok());
        assert!(b.try_take("ec2.CreateNatGateway", "us-west-2", t1).is_err());
        // another class has its own bucket; an unmetered class is never empty
        assert!(b.try_take("ec2.mutating", "us-west-2", t1).is_ok());
        assert!(b.try_take("elbv2", "us-west-2", t1).is_ok());
    }

    #[test]
    fn each_region_has_its_own_buckets_and_route53_one_for_the_account() {
        let b = Buckets::new(Limits::aws_defaults());
        let t0 = Timestamp::UNIX_EPOCH;
        for _ in 0..10 {
            assert!(b.try_take("ec2.CreateNatGateway", "us-west-2", t0).is_ok());
        }
        assert!(b.try_take("ec2.CreateNatGateway", "us-west-2", t0).is_err());
        // another region's bucket is still full, as AWS meters EC2 per region
        assert!(b.try_take("ec2.CreateNatGateway", "us-east-2", t0).is_ok());
        // Route 53 is global: one bucket whatever region the call names
        for i in 0..50 {
            let region = if i % 2 == 0 { "us-west-2" } else { "us-east-1" };
            assert!(b.try_take("route53", region, t0).is_ok());
        }
        assert!(b.try_take("route53", "eu-west-1", t0).is_err());
        assert_eq!(scope("ec2.mutating", "us-west-2"), "ec2.mutating@us-west-2");
        assert_eq!(scope("route53.CreateHealthCheck", "us-west-2"), "route53.CreateHealthCheck");
    }

    #[test]
    fn calls_are_classed_as_aws_meters_them() {
        assert_eq!(class("ec2", "DescribeVolumes").as_deref(), Some("ec2.non-mutating"));
        assert_eq!(class("ec2", "CreateVolume").as_deref(), Some("ec2.mutating"));
        assert_eq!(class("ec2", "CreateNatGateway").as_deref(), Some("ec2.CreateNatGateway"));
        assert_eq!(class("route53", "CreateHealthCheck").as_deref(), Some("route53.CreateHealthCheck"));
        assert_eq!(class("rds", "DescribeDBInstances").as_deref(), Some("rds"));
        assert_eq!(class("elbv2", "DescribeTargetHealth"), None);
    }
}

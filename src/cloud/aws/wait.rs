//! Poll intervals suited to each kind of AWS resource: exponential from a first delay up to a ceiling, with jitter
//! so that parallel steps do not poll in lock-step. Also the short retry for eventual consistency: a resource just
//! created may be "not found" for a moment.

use std::future::Future;
use std::time::Duration;

use crate::cloud::CloudError;

/// A poll schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub factor: f64,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self { first, max, factor: 1.5 }
    }

    /// The delay before poll number `n` (0-based), with ±20 % jitter drawn from `rng`.
    pub fn delay(&self, n: u32, rng: &mut fastrand::Rng) -> Duration {
        let base = self.first.as_secs_f64() * self.factor.powi(i32::try_from(n.min(40)).unwrap_or(40));
        let capped = base.min(self.max.as_secs_f64());
        Duration::from_secs_f64(capped * (0.8 + rng.f64() * 0.4))
    }

    /// The schedule for a kind of resource, from how long it typically takes on AWS.
    pub fn for_kind(kind: &str) -> Backoff {
        let s = Duration::from_secs;
        match kind {
            // 10-40 min: no point asking more than every 30 s
            "db_instance" | "db_snapshot" | "db_cluster" => Backoff::new(s(15), s(30)),
            // minutes, proportional to size
            "ebs_snapshot" | "image" | "volume" | "restore_job" | "copy_job" | "import" => Backoff::new(s(5), s(30)),
            // 1-3 min
            "nat_gateway" | "load_balancer" | "instance" => Backoff::new(s(5), s(15)),
            // seconds to a minute
            "target_health" | "asg_instances" | "change" | "instance_refresh" => Backoff::new(s(3), s(10)),
            _ => Backoff::new(s(5), s(20)),
        }
    }
}

/// Runs `call` again, briefly, while it fails with not-found: read-after-create consistency on EC2, ELB and
/// others. Gives up after `tries` attempts and returns the last error.
pub async fn consistent<T, F, Fut>(tries: u32, mut call: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    let mut n = 0;
    loop {
        match call().await {
            Err(e) if e.is_not_found() && n + 1 < tries => {
                tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(n.min(5)))).await;
                n += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_ceiling_with_jitter() {
        let b = Backoff::new(Duration::from_secs(5), Duration::from_secs(30));
        let mut rng = fastrand::Rng::with_seed(7);
        let d0 = b.delay(0, &mut rng);
        assert!(d0 >= Duration::from_secs(4) && d0 <= Duration::from_secs(6), "{d0:?}");
        let d20 = b.delay(20, &mut rng);
        assert!(d20 >= Duration::from_secs(24) && d20 <= Duration::from_secs(36), "{d20:?}");
        assert!(Backoff::for_kind("db_instance").first > Backoff::for_kind("target_health").first);
    }

    #[tokio::test]
    async fn consistent_retries_not_found_then_succeeds() {
        let mut calls = 0;
        let r = consistent(4, || {
            calls += 1;
            let c = calls;
            async move {
                if c < 3 {
                    Err(crate::cloud::aws::error::cloud_error(
                        "ec2",
                        "DescribeNatGateways",
                        "us-west-2",
                        "NatGatewayNotFound",
                        "x",
                        None,
                        None,
                    ))
                } else {
                    Ok(c)
                }
            }
        })
        .await;
        assert_eq!(r.ok(), Some(3));
    }
}

//! Polls of many resources of one kind, batched into one describe.
//!
//! In an incident several applications run in one process, and each waits for its own RDS instance, NAT gateway,
//! snapshot copies, AMI copy and volumes at the same time. A [`Batcher`] lets those waits share describes: per
//! region it keeps the ids being watched (polled within [`WATCHED`] of run time) and each one's latest answer.
//! A poll whose answer is younger than [`FRESH`] gets it without a call; any other poll makes ONE describe for
//! every watched id of the kind and region (in chunks of the API's maximum), stores every answer, and an id
//! absent from the answer is not found (`None`). One describe is in flight at a time per region, so concurrent
//! pollers wait for it rather than make their own; an error of the describe reaches every caller it was made for
//! (a throttling error stays retryable, so a wait waits it out).
//!
//! Only waits poll through here: a lookup before a create reads the resource itself, uncached, so whether to
//! create is never decided on an answer a few seconds old.
//!
//! Time is run time, from the run's [`Clock`] (simulated on the simulator).

// The port's `CloudError` is returned by value everywhere, as the port's traits do (see `cloud::aws`).
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{CloudResult, DbInstance, DbSnapshot, Image, Instance, NatGateway, Snapshot, Volume};
use crate::run::Clock;

/// An answer younger than this is given without a call: below the shortest wait interval (15 s), so one waiter
/// never sees the same sample twice.
pub const FRESH: Duration = Duration::from_secs(10);
/// An id not polled for this long is no longer watched (the longest wait interval is 60 s).
pub const WATCHED: Duration = Duration::from_secs(90);

/// Ids (or filter values) per describe: RDS's filters take 100 values, EC2's 200, DescribeLoadBalancers 20 names.
pub const MAX_RDS_IDS: usize = 100;
pub const MAX_EC2_IDS: usize = 200;
pub const MAX_ELB_NAMES: usize = 20;

/// One stored answer: when its describe started (run time since the clock's start), and what it said.
struct Answer<T> {
    at: Duration,
    value: CloudResult<Option<T>>,
}

/// A watched id: when it was last polled, and when it was last changed by this process (a modify, an attach).
#[derive(Debug, Clone, Copy)]
struct Watch {
    polled: Duration,
    changed: Option<Duration>,
}

/// One kind in one region: who is watched (a plain lock: a poller registers before it queues for the describe),
/// and the latest answers (held across the describe: one in flight at a time).
struct Slot<T> {
    watched: std::sync::Mutex<HashMap<String, Watch>>,
    answers: tokio::sync::Mutex<HashMap<String, Answer<T>>>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self { watched: std::sync::Mutex::new(HashMap::new()), answers: tokio::sync::Mutex::new(HashMap::new()) }
    }
}

impl<T> Slot<T> {
    fn watched(&self) -> std::sync::MutexGuard<'_, HashMap<String, Watch>> {
        self.watched.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Shares the describes of one kind of resource among concurrent pollers, per region.
pub struct Batcher<T> {
    clock: Clock,
    max_ids: usize,
    slots: std::sync::Mutex<HashMap<String, Arc<Slot<T>>>>,
}

impl<T> std::fmt::Debug for Batcher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("max_ids", &self.max_ids).finish_non_exhaustive()
    }
}

impl<T: Clone + Send> Batcher<T> {
    /// A batcher on `clock` whose describes take at most `max_ids` ids each.
    pub fn new(clock: Clock, max_ids: usize) -> Self {
        Self { clock, max_ids: max_ids.max(1), slots: std::sync::Mutex::new(HashMap::new()) }
    }

    fn slot(&self, region: &str) -> Arc<Slot<T>> {
        let mut m = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(region.to_string()).or_default().clone()
    }

    /// The latest answer for `id` in `region`: a stored one younger than [`FRESH`] (and taken after this id's
    /// previous poll and after its last change, so a waiter never sees one sample twice, nor one from before what
    /// it just did), else what one `describe` of every watched id says (`describe` gets the ids, at most the
    /// maximum per call, and returns what it found with each one's id).
    pub async fn poll<F, Fut>(&self, region: &str, id: &str, mut describe: F) -> CloudResult<Option<T>>
    where
        F: FnMut(Vec<String>) -> Fut,
        Fut: Future<Output = CloudResult<Vec<(String, T)>>>,
    {
        let slot = self.slot(region);
        let registered = self.clock.elapsed();
        let prev = {
            let mut w = slot.watched();
            match w.get_mut(id) {
                Some(e) => Some(std::mem::replace(&mut e.polled, registered)),
                None => {
                    w.insert(id.to_string(), Watch { polled: registered, changed: None });
                    None
                }
            }
        };
        let mut answers = slot.answers.lock().await;
        let now = self.clock.elapsed();
        let changed = slot.watched().get(id).and_then(|e| e.changed);
        if let Some(a) = answers.get(id)
            && now.saturating_sub(a.at) < FRESH
            && prev.is_none_or(|p| a.at > p)
            && changed.is_none_or(|c| a.at >= c)
        {
            return a.value.clone();
        }
        // pollers due at this same instant register first, and are asked for in this describe
        tokio::task::yield_now().await;
        let now = self.clock.elapsed();
        let ids: Vec<String> = {
            let mut w = slot.watched();
            if let Some(e) = w.get_mut(id) {
                e.polled = now;
            }
            w.retain(|_, e| now.saturating_sub(e.polled) <= WATCHED);
            // the caller's id first, then the others, in a stable order
            let mut others: Vec<String> = w.keys().filter(|k| k.as_str() != id).cloned().collect();
            others.sort();
            std::iter::once(id.to_string()).chain(others).collect()
        };
        answers.retain(|k, _| ids.contains(k));
        for chunk in ids.chunks(self.max_ids) {
            match describe(chunk.to_vec()).await {
                Ok(found) => {
                    let mut found: HashMap<String, T> = found.into_iter().collect();
                    for i in chunk {
                        answers.insert(i.clone(), Answer { at: now, value: Ok(found.remove(i)) });
                    }
                }
                Err(e) => {
                    for i in chunk {
                        answers.insert(i.clone(), Answer { at: now, value: Err(e.clone()) });
                    }
                    // the rest are asked for when they are polled (a throttled account gets no more calls now)
                    break;
                }
            }
        }
        answers.get(id).map_or(Ok(None), |a| a.value.clone())
    }

    /// `id` was just changed by this process (modified, attached, stopped...): no answer taken before now is given
    /// for it, so the wait that follows sees the change.
    pub fn changed(&self, region: &str, id: &str) {
        let slot = self.slot(region);
        let now = self.clock.elapsed();
        if let Some(e) = slot.watched().get_mut(id) {
            e.changed = Some(now);
        }
    }

    /// Marks `ids` as changed ([`Batcher::changed`]) when the returned guard is dropped: held by a method that
    /// changes them, so the mark is after the change, however the method returns.
    #[must_use = "the ids are marked when the guard is dropped"]
    pub fn changing<'a>(&'a self, region: &'a str, ids: &[&str]) -> Changing<'a, T> {
        Changing { batcher: self, region, ids: ids.iter().map(|i| (*i).to_string()).collect() }
    }

    /// The ids watched in `region` now (tests, figures).
    pub fn watched(&self, region: &str) -> HashSet<String> {
        let slot = self.slot(region);
        let now = self.clock.elapsed();
        let w = slot.watched();
        w.iter().filter(|(_, e)| now.saturating_sub(e.polled) <= WATCHED).map(|(k, _)| k.clone()).collect()
    }
}

/// See [`Batcher::changing`].
pub struct Changing<'a, T: Clone + Send> {
    batcher: &'a Batcher<T>,
    region: &'a str,
    ids: Vec<String>,
}

impl<T: Clone + Send> Drop for Changing<'_, T> {
    fn drop(&mut self) {
        for id in &self.ids {
            self.batcher.changed(self.region, id);
        }
    }
}

/// A batcher per kind that waits poll, shared by every run on the same clients (the AWS adapter's [`Clients`],
/// shared by an incident's applications) or the same simulated world.
///
/// [`Clients`]: crate::cloud::aws::Clients
#[derive(Debug)]
pub struct Polls {
    pub db_instances: Batcher<DbInstance>,
    pub db_snapshots: Batcher<DbSnapshot>,
    pub snapshots: Batcher<Snapshot>,
    pub volumes: Batcher<Volume>,
    pub images: Batcher<Image>,
    pub nat_gateways: Batcher<NatGateway>,
    pub instances: Batcher<Instance>,
    /// Load balancers' states (`provisioning`, `active`...), by name.
    pub load_balancers: Batcher<String>,
}

impl Polls {
    pub fn new(clock: &Clock) -> Self {
        Self {
            db_instances: Batcher::new(clock.clone(), MAX_RDS_IDS),
            db_snapshots: Batcher::new(clock.clone(), MAX_RDS_IDS),
            snapshots: Batcher::new(clock.clone(), MAX_EC2_IDS),
            volumes: Batcher::new(clock.clone(), MAX_EC2_IDS),
            images: Batcher::new(clock.clone(), MAX_EC2_IDS),
            nat_gateways: Batcher::new(clock.clone(), MAX_EC2_IDS),
            instances: Batcher::new(clock.clone(), MAX_EC2_IDS),
            load_balancers: Batcher::new(clock.clone(), MAX_ELB_NAMES),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cloud::CloudError;

    /// A describe that answers `state-of-ID` for every id but `gone-*`, and records the ids of each call.
    fn recorder() -> Arc<Mutex<Vec<Vec<String>>>> {
        Arc::new(Mutex::new(Vec::new()))
    }

    async fn describe(log: Arc<Mutex<Vec<Vec<String>>>>, ids: Vec<String>) -> CloudResult<Vec<(String, String)>> {
        // a call takes a little time, as an API call does: concurrent pollers queue behind it
        tokio::time::sleep(Duration::from_millis(150)).await;
        log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(ids.clone());
        Ok(ids.into_iter().filter(|i| !i.starts_with("gone")).map(|i| (i.clone(), format!("state-of-{i}"))).collect())
    }

    fn calls(log: &Arc<Mutex<Vec<Vec<String>>>>) -> Vec<Vec<String>> {
        log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn batcher() -> Arc<Batcher<String>> {
        Arc::new(Batcher::new(Clock::starting_at("2026-11-21T03:00:00Z".parse().unwrap_or_default(), 1.0), 100))
    }

    async fn poll(b: &Batcher<String>, log: &Arc<Mutex<Vec<Vec<String>>>>, id: &str) -> CloudResult<Option<String>> {
        b.poll("us-west-2", id, |ids| describe(log.clone(), ids)).await
    }

    /// Polls `ids` once each, all at the same time.
    async fn together(
        b: &Arc<Batcher<String>>,
        log: &Arc<Mutex<Vec<Vec<String>>>>,
        ids: &[&str],
    ) -> Vec<CloudResult<Option<String>>> {
        let tasks: Vec<_> = ids
            .iter()
            .map(|id| {
                let (b, log, id) = (b.clone(), log.clone(), (*id).to_string());
                tokio::spawn(async move { poll(&b, &log, &id).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or_else(|e| Err(CloudError::new("test", "join", "", "Join", e.to_string()))));
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_pollers_of_different_ids_share_one_describe() {
        let (b, log) = (batcher(), recorder());
        let ids = ["db-1", "db-2", "db-3", "db-4", "db-5"];
        let first = together(&b, &log, &ids).await;
        assert_eq!(calls(&log).len(), 1, "one describe for {} concurrent pollers: {:?}", ids.len(), calls(&log));
        let mut asked = calls(&log)[0].clone();
        asked.sort();
        assert_eq!(asked, ids.iter().map(|s| (*s).to_string()).collect::<Vec<_>>());
        for (id, r) in ids.iter().zip(&first) {
            assert_eq!(r.as_ref().ok().cloned().flatten(), Some(format!("state-of-{id}")));
        }
        // a wait interval later, the next round is one describe again
        tokio::time::sleep(Duration::from_secs(15)).await;
        let again = together(&b, &log, &ids).await;
        assert_eq!(calls(&log).len(), 2, "{:?}", calls(&log));
        assert!(again.iter().all(|r| matches!(r, Ok(Some(_)))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_answer_is_given_without_a_call_and_a_stale_one_is_asked_again() {
        let (b, log) = (batcher(), recorder());
        assert_eq!(poll(&b, &log, "vol-1").await.ok().flatten().as_deref(), Some("state-of-vol-1"));
        // another waiter's poll 3 s later asks for both
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(poll(&b, &log, "vol-2").await.is_ok());
        assert_eq!(calls(&log).len(), 2);
        // vol-1 polled again 5 s after its first poll: the answer of 2 s ago is given, no call
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(poll(&b, &log, "vol-1").await.ok().flatten().as_deref(), Some("state-of-vol-1"));
        assert_eq!(calls(&log).len(), 2, "a poll inside the freshness window made a call: {:?}", calls(&log));
        // past the window (that answer is 10 s old): asked again
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert!(poll(&b, &log, "vol-2").await.is_ok());
        assert_eq!(calls(&log).len(), 3, "a poll after the freshness window made no call");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_never_gets_its_own_sample_again_nor_one_from_before_its_change() {
        let (b, log) = (batcher(), recorder());
        assert!(poll(&b, &log, "db-1").await.is_ok());
        // the same id polled again 1 s later (a second wait after a modify): a new describe, not the same sample
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(poll(&b, &log, "db-1").await.is_ok());
        assert_eq!(calls(&log).len(), 2);
        // another waiter's describe, then a change of db-1 by this process: db-1's next poll asks again
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(poll(&b, &log, "db-2").await.is_ok());
        b.changed("us-west-2", "db-1");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(poll(&b, &log, "db-1").await.is_ok());
        assert_eq!(calls(&log).len(), 4, "an answer from before the change was given: {:?}", calls(&log));
    }

    #[tokio::test(start_paused = true)]
    async fn an_id_absent_from_the_answer_is_not_found() {
        let (b, log) = (batcher(), recorder());
        assert_eq!(poll(&b, &log, "snap-1").await.ok().flatten().as_deref(), Some("state-of-snap-1"));
        assert_eq!(poll(&b, &log, "gone-2").await.ok(), Some(None));
        // the second poll asked for both (snap-1 is watched), and answered gone-2 with nothing
        assert_eq!(calls(&log)[1], vec!["gone-2".to_string(), "snap-1".to_string()]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_id_not_polled_for_ninety_seconds_drops_out_of_the_describe() {
        let (b, log) = (batcher(), recorder());
        assert!(poll(&b, &log, "nat-old").await.is_ok());
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(poll(&b, &log, "nat-new").await.is_ok());
        assert_eq!(calls(&log)[1], vec!["nat-new".to_string(), "nat-old".to_string()], "60 s: still watched");
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert!(poll(&b, &log, "nat-new").await.is_ok());
        assert_eq!(calls(&log)[2], vec!["nat-new".to_string()], "91 s without a poll: no longer asked for");
        assert_eq!(b.watched("us-west-2"), HashSet::from(["nat-new".to_string()]));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_of_the_describe_reaches_every_caller_and_stays_retryable() {
        let b = batcher();
        let n = Arc::new(Mutex::new(0u32));
        let failing = |ids: Vec<String>| {
            let n = n.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                *n.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
                let _ = ids;
                Err::<Vec<(String, String)>, _>(
                    CloudError::new("ec2", "DescribeVolumes", "us-west-2", "RequestLimitExceeded", "slow down")
                        .classified(Some(503)),
                )
            }
        };
        // both watched first (one poll each, 15 s apart)
        assert!(b.poll("us-west-2", "vol-a", failing).await.is_err());
        assert!(b.poll("us-west-2", "vol-b", failing).await.is_err());
        tokio::time::sleep(Duration::from_secs(15)).await;
        let before = *n.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (ra, rb) = tokio::join!(b.poll("us-west-2", "vol-a", failing), b.poll("us-west-2", "vol-b", failing));
        let after = *n.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        assert_eq!(after - before, 1, "one describe for both callers");
        for r in [ra, rb] {
            let e = r.err();
            assert!(e.as_ref().is_some_and(|e| e.is_throttling() && e.is_retryable()), "{e:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn describes_are_chunked_at_the_maximum_and_regions_are_apart() {
        let log = recorder();
        let b = Arc::new(Batcher::new(Clock::starting_at(jiff::Timestamp::UNIX_EPOCH, 1.0), 2));
        for id in ["i-1", "i-2", "i-3"] {
            assert!(poll(&b, &log, id).await.is_ok());
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
        let before = calls(&log).len();
        assert!(poll(&b, &log, "i-3").await.is_ok());
        let round = calls(&log)[before..].to_vec();
        assert_eq!(round, vec![vec!["i-3".to_string(), "i-1".to_string()], vec!["i-2".to_string()]]);
        // another region has its own watched set
        let other = b.poll("eu-west-1", "i-9", |ids| describe(log.clone(), ids)).await;
        assert!(other.is_ok());
        assert_eq!(calls(&log).last().cloned(), Some(vec!["i-9".to_string()]));
    }
}

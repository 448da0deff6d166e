//! Helpers shared by the cloud actions: error mapping, waits that report state changes and progress, outputs.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use super::{ActionCtx, ActionError, Outputs, Params};
use crate::cloud::{CloudError, CloudResult};

/// A cloud error as an action error: retryable errors (throttling, capacity, 5xx) may be retried by the engine.
pub fn cerr(e: CloudError) -> ActionError {
    let cause = e.cause();
    if e.is_refusal() {
        // the account guard: nothing was changed; the run ends refused (exit 4)
        return ActionError::refused(e.message).with_cause(cause);
    }
    if e.is_unreachable() {
        // the region's circuit is open: another attempt now would be refused the same way, at once; the step
        // fails naming the region and what it needed, and its on_failure applies
        return ActionError::fatal(e.to_string()).with_cause(cause);
    }
    let a = if e.is_retryable() { ActionError::transient(e.to_string()) } else { ActionError::fatal(e.to_string()) };
    a.with_cause(cause)
}

/// Runs a cloud call, mapping its error. Refused, without calling, once the run is halted (its journal could not
/// record the last event: nothing may be done past it).
pub async fn c<T>(f: impl Future<Output = CloudResult<T>>) -> Result<T, ActionError> {
    if crate::run::halted_here() {
        return Err(ActionError::fatal("the run was halted: its last event could not be recorded"));
    }
    f.await.map_err(cerr)
}

/// `region`, defaulting to the runbook's secondary region (where a failover rebuilds).
pub fn region(ctx: &ActionCtx, p: &Params) -> Result<String, ActionError> {
    Ok(p.opt_str("region")?.map_or_else(|| ctx.target.secondary.clone(), str::to_string))
}

/// `source_region`, defaulting to the runbook's primary region.
pub fn source_region(ctx: &ActionCtx, p: &Params) -> Result<String, ActionError> {
    Ok(p.opt_str("source_region")?.map_or_else(|| ctx.target.primary.clone(), str::to_string))
}

/// Where a copy goes, for plan lines: `from A to B`, or `within A` when both are one region.
pub fn copy_route(p: &Params) -> String {
    let src = p.text("source_region").unwrap_or_else(|_| "primary".into());
    let dst = p.text("region").unwrap_or_else(|_| "secondary".into());
    if src == dst { format!("within {dst}") } else { format!("from {src} to {dst}") }
}

/// A list for one line of progress or an error: the first `max` items, then how many more (`a; b; … and 43 more`),
/// so 46 snapshots do not make a 10,000-character line. The full list belongs in the resources and the report.
pub fn summary(items: &[String], max: usize) -> String {
    if items.len() <= max {
        return items.join("; ");
    }
    format!("{}; … and {} more", items[..max].join("; "), items.len() - max)
}

pub fn outs(pairs: &[(&str, Value)]) -> Outputs {
    pairs.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect()
}

pub fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// How often waits poll: real AWS waiters poll every 15-30 s.
pub const POLL: Duration = Duration::from_secs(15);
pub const POLL_SLOW: Duration = Duration::from_secs(30);

/// Polls `fetch` until the state is one of `done`; emits a `state` resource event on every change and progress
/// when the fetch reports a percentage. A state in `failed` fails the step; retryable API errors while waiting
/// (throttling) are waited out. Polls back off (×1.5 up to a minute) while nothing changes, and start again at
/// `poll` after a change.
#[allow(clippy::too_many_arguments)]
pub async fn wait_state<F, Fut>(
    ctx: &ActionCtx,
    kind: &str,
    id: &str,
    region: &str,
    poll: Duration,
    done: &[&str],
    failed: &[&str],
    mut fetch: F,
) -> Result<String, ActionError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = CloudResult<(String, Option<u8>)>>,
{
    let mut last = String::new();
    let mut last_pct = None;
    let mut interval = poll;
    let cap = poll.max(Duration::from_secs(60));
    loop {
        match fetch().await {
            Ok((state, pct)) => {
                if state != last {
                    ctx.resource("state", kind, id, region, &state);
                    last.clone_from(&state);
                    interval = poll;
                }
                if done.contains(&state.as_str()) {
                    return Ok(state);
                }
                if failed.contains(&state.as_str()) {
                    return Err(ActionError::fatal(format!("{kind} {id} in {region} went to state `{state}`")));
                }
                if let Some(p) = pct
                    && Some(p) != last_pct
                {
                    ctx.progress(format!("{kind} {id}: {state} {p}%"), Some(f64::from(p)));
                    last_pct = Some(p);
                }
            }
            Err(e) if e.is_retryable() && !e.is_unreachable() => {
                ctx.progress_error(format!("waiting for {kind} {id}: {e}; polling again"), &e);
                if e.is_throttling() {
                    // throttled: ask less often until the state changes
                    interval = interval.mul_f64(2.0).min(cap);
                }
            }
            Err(e) => return Err(cerr(e)),
        }
        ctx.sleep(interval).await?;
        interval = interval.mul_f64(1.5).min(cap);
    }
}

/// `key=value` → (key, value); a bare value is a `Name` tag.
pub fn tag_pair(t: &str) -> (String, String) {
    match t.split_once('=') {
        Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
        None => ("Name".into(), t.trim().to_string()),
    }
}

/// A deterministic token for client tokens and idempotent names (64 chars max).
pub fn token(parts: &[&str]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

pub fn fqdn(name: &str) -> String {
    if name.ends_with('.') { name.to_string() } else { format!("{name}.") }
}

pub fn u32_param(p: &Params, name: &str, default: u32) -> Result<u32, ActionError> {
    match p.opt_int(name)? {
        None => Ok(default),
        Some(v) => u32::try_from(v).map_err(|_| ActionError::fatal(format!("parameter `{name}` must be 0 or more"))),
    }
}

pub fn port_param(p: &Params, name: &str, default: u16) -> Result<u16, ActionError> {
    match p.opt_int(name)? {
        None => Ok(default),
        Some(v) => u16::try_from(v).map_err(|_| ActionError::fatal(format!("parameter `{name}` must be 1-65535"))),
    }
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn a_long_list_is_summarised_in_one_line() {
        let items: Vec<String> =
            (0..46).map(|i| format!("snap-{i:017x} of vol-0abc (2026-11-21 0{}:00Z)", i % 10)).collect();
        let line = summary(&items, 5);
        assert!(line.ends_with("… and 41 more"), "{line}");
        assert_eq!(line.matches("snap-").count(), 5);
        assert!(line.len() < 400, "{} characters", line.len());
        assert_eq!(summary(&items[..2], 5), format!("{}; {}", items[0], items[1]));
    }
}

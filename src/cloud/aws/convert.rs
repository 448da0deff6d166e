//! Small conversions between SDK types and the port's plain data.

use sha2::{Digest, Sha256};

use crate::cloud::Tags;

/// An SDK timestamp as a `jiff::Timestamp` (the epoch when out of range, which AWS never sends).
pub fn ts(t: Option<&aws_smithy_types::DateTime>) -> jiff::Timestamp {
    t.and_then(|t| jiff::Timestamp::new(t.secs(), i32::try_from(t.subsec_nanos()).unwrap_or(0)).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

pub fn opt_ts(t: Option<&aws_smithy_types::DateTime>) -> Option<jiff::Timestamp> {
    t.map(|t| ts(Some(t)))
}

pub fn to_dt(t: jiff::Timestamp) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(t.as_second(), u32::try_from(t.subsec_nanosecond()).unwrap_or(0))
}

pub fn u64_of(v: Option<i32>) -> u64 {
    v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

pub fn pct(v: Option<i32>) -> u8 {
    v.and_then(|v| u8::try_from(v.clamp(0, 100)).ok()).unwrap_or(0)
}

/// Collects `(key, value)` pairs into port tags.
pub fn tags<'a>(it: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>) -> Tags {
    it.into_iter().filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string()))).collect()
}

/// A deterministic idempotency token (≤ 64 characters) for a create call, from what identifies it: the same
/// request by the same step of the same runbook gets the same token, so a retried call cannot create twice.
pub fn client_token(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    d.iter().take(24).map(|b| format!("{b:02x}")).collect()
}

/// The tags that identify what a step of a runbook creates, whatever the run: everything but the run id.
pub fn identity_tags(t: &Tags) -> Tags {
    t.iter().filter(|(k, _)| k.as_str() != crate::cloud::TAG_RUN_ID).map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stable_and_distinct() {
        assert_eq!(client_token(&["a", "b"]), client_token(&["a", "b"]));
        assert_ne!(client_token(&["a", "b"]), client_token(&["ab", ""]));
        assert_eq!(client_token(&["x"]).len(), 48);
    }

    #[test]
    fn timestamps_round_trip() {
        let t: jiff::Timestamp = "2026-11-21T03:04:05Z".parse().unwrap();
        assert_eq!(ts(Some(&to_dt(t))), t);
    }
}

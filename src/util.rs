//! Small helpers shared across the crate: durations, suggestions, hashing, and making text safe to show.
//!
//! Rule: text that drconsole did not write (command output, AWS names and tags, runbook values, error messages from
//! services) goes through [`sanitize_line`] or [`sanitize_text`] before it reaches a terminal, so that it cannot
//! move the cursor, change colours, set the window title or hide what follows.

use std::time::Duration;

/// Parses a runbook duration: `90s`, `45m`, `2h`, `1h30m`, `1h 30m`, `500ms`. Zero and negative are refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("\"{s}\" is not a duration; write e.g. \"90s\", \"45m\", \"2h\" or \"1h30m\"");
    if t.len() != s.len() && !t.is_empty() {
        return Err(format!("\"{s}\" has a space before or after the duration; write \"{t}\""));
    }
    if t.is_empty() || t.starts_with('-') || t.starts_with('+') {
        return Err(bad());
    }
    // a bare number is ambiguous (seconds? minutes?) in a DR document: require a unit
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("\"{s}\" has no unit; write e.g. \"{t}s\" or \"{t}m\""));
    }
    let d: jiff::SignedDuration = t.parse().map_err(|_| bad())?;
    let d: Duration = d.try_into().map_err(|_| bad())?;
    if d.is_zero() {
        return Err(format!("\"{s}\" must be longer than zero"));
    }
    Ok(d)
}

/// `1h02m03s`-style compact rendering, for durations shown to people.
pub fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s:02}s"),
        _ => format!("{h}h{m:02}m"),
    }
}

/// `H:MM:SS` clock rendering, with a sign for negative margins.
pub fn fmt_clock(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let a = secs.unsigned_abs();
    format!("{sign}{}:{:02}:{:02}", a / 3600, (a / 60) % 60, a % 60)
}

/// "did you mean `x`?" for a misspelt name, by edit distance.
pub fn suggest(word: &str, candidates: &[&str]) -> Option<String> {
    let best = candidates
        .iter()
        .map(|c| (levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)?;
    Some(format!("did you mean `{}`?", best.1))
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub fn sha256_hex<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One line of text safe to print on a terminal: control characters (C0, DEL, C1 — escape sequences start with
/// them), line and paragraph separators and bidirectional overrides are written as visible escapes (`\n`, `\t`,
/// `\x1b`, `\u{202e}`); everything else is kept.
pub fn sanitize_line(s: &str) -> std::borrow::Cow<'_, str> {
    sanitize_with(s, false)
}

/// Like [`sanitize_line`], but keeps line breaks (`\n`) for text shown over several lines (a step's output in the
/// console's detail pane). A `\r\n` becomes `\n`; a lone `\r` (which would overwrite the line) is escaped.
pub fn sanitize_text(s: &str) -> std::borrow::Cow<'_, str> {
    sanitize_with(s, true)
}

fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn sanitize_with(s: &str, keep_newlines: bool) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            '\r' if keep_newlines && chars.peek() == Some(&'\n') => {}
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => {
                let n = u32::from(c);
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{{{n:x}}}"));
                }
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Lets a closed stdout end the process quietly, as command-line tools do (`drconsole actions | head -1`): the
/// default action of SIGPIPE instead of a panic on the failed write. For commands that only print; a run must not
/// die on it (its writes ignore errors instead).
pub fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal, before any thread is started
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Serde as whole seconds.
pub mod serde_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

/// Serde for `Option<Duration>` as whole seconds.
pub mod serde_opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

/// Splits `s3://BUCKET/PREFIX` into the bucket and the prefix (without slashes at either end), checking the
/// bucket name.
pub fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let rest = url.trim().strip_prefix("s3://").ok_or("write s3://BUCKET/PREFIX")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let ok = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !ok {
        return Err(format!(
            "`{bucket}` is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"
        ));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// Text that came from outside (command output, AWS names and tags, step outputs) made safe to show on a
/// terminal: control characters (C0, DEL, C1, which carry escape sequences) become visible `\xNN` escapes, tabs
/// and line breaks become spaces. Borrowed when there is nothing to change.
pub fn sanitize(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' | '\n' => o.push(' '),
            '\r' => {}
            c if c.is_control() => {
                use std::fmt::Write as _;
                let _ = write!(o, "\\x{:02x}", u32::from(c));
            }
            c => o.push(c),
        }
    }
    std::borrow::Cow::Owned(o)
}

/// The user name of the process's real uid, from the password database (`getpwuid_r`).
pub fn uid_name() -> Option<String> {
    // SAFETY: getuid has no preconditions; getpwuid_r writes only into the buffers we pass and their sizes
    unsafe {
        let uid = libc::getuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out);
        if rc != 0 || out.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned();
        (!name.is_empty()).then_some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("45m"), Ok(Duration::from_secs(2700)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("90").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration(" 5m").is_err());
        assert!(parse_duration("5m ").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("timout", &["timeout", "title"]).as_deref(), Some("did you mean `timeout`?"));
        assert_eq!(suggest("zzzzzz", &["timeout"]), None);
    }

    #[test]
    fn sanitizing_makes_escapes_visible() {
        assert_eq!(sanitize_line("plain text ✓"), "plain text ✓");
        assert_eq!(sanitize_line("a\x1b[2Jb\x07"), "a\\x1b[2Jb\\x07");
        assert_eq!(sanitize_line("two\nlines\r"), "two\\nlines\\r");
        assert_eq!(sanitize_line("\u{9b}31m \u{202e}abc"), "\\x9b31m \\u{202e}abc");
        assert_eq!(sanitize_text("one\r\ntwo\n\x1b]0;title\x07"), "one\ntwo\n\\x1b]0;title\\x07");
        assert_eq!(sanitize_text("over\rwrite"), "over\\rwrite");
    }

    #[test]
    fn clocks() {
        assert_eq!(fmt_clock(3725), "1:02:05");
        assert_eq!(fmt_clock(-61), "-0:01:01");
        assert_eq!(fmt_duration(Duration::from_secs(3725)), "1h02m");
    }
}

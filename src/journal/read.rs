//! Reading a journal back: every complete line is checked (checksum, sequence); a torn last line (the process was
//! killed mid-write) is tolerated and dropped; a bad line anywhere else is corruption, reported with its number.

use std::path::Path;

use super::base::{CRC_SUFFIX_LEN, JournalError, Line, Note, checksum};
use crate::engine::Event;
use crate::run::RunView;
use crate::run::view::SessionOpened;

/// One record of a journal.
#[derive(Debug, Clone)]
pub enum Record {
    Event(Event),
    Note(Note),
}

/// A journal, read and checked.
#[derive(Debug, Clone, Default)]
pub struct JournalRead {
    /// With their record numbers (1, 2, 3...).
    pub records: Vec<(u64, Record)>,
    /// The last line was incomplete (a crash mid-write) and was left out.
    pub torn_tail: bool,
    /// Bytes of the file made of complete, valid lines.
    pub valid_len: usize,
}

impl JournalRead {
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.records.iter().filter_map(|(_, r)| match r {
            Record::Event(e) => Some(e),
            Record::Note(_) => None,
        })
    }

    pub fn notes(&self) -> impl Iterator<Item = &Note> {
        self.records.iter().filter_map(|(_, r)| match r {
            Record::Note(n) => Some(n),
            Record::Event(_) => None,
        })
    }

    /// The run's view: every event folded in, and every session note ([`RunView::open_session`]). The journal's
    /// one fold: the reports, `runs`, resume and the edge checks read the run from it.
    pub fn view(&self) -> RunView {
        let mut view = RunView::new();
        for (_, r) in &self.records {
            view.apply_record(r);
        }
        view
    }

    pub fn last_record_seq(&self) -> u64 {
        self.records.last().map_or(0, |(s, _)| *s)
    }

    /// The highest engine event number (a resumed run numbers its events after it).
    pub fn last_event_seq(&self) -> u64 {
        self.events().map(|e| e.seq).max().unwrap_or(0)
    }
}

/// Folding a journal record into a [`RunView`]: an event, or a session note.
pub trait ApplyRecord {
    fn apply_record(&mut self, r: &Record);
}

impl ApplyRecord for RunView {
    fn apply_record(&mut self, r: &Record) {
        match r {
            Record::Event(e) => self.apply(e),
            Record::Note(Note::Session { number, resumed, user, host, pid, at }) => {
                self.open_session(SessionOpened {
                    number: *number,
                    resumed: *resumed,
                    user: user.clone(),
                    host: host.clone(),
                    pid: *pid,
                    at: *at,
                    after_seq: 0,
                });
            }
            Record::Note(_) => {}
        }
    }
}

/// Reads and checks `run_dir/journal.jsonl` (or a journal file given directly).
pub fn read_journal(path: &Path) -> Result<JournalRead, JournalError> {
    let path = if path.is_dir() { path.join("journal.jsonl") } else { path.to_path_buf() };
    let bytes = std::fs::read(&path).map_err(JournalError::io("cannot read the journal", &path))?;
    parse(&path, &bytes)
}

/// Checks one complete line; returns its record.
pub(crate) fn decode(text: &str, expect_seq: u64) -> Result<(u64, Record), String> {
    if text.len() <= CRC_SUFFIX_LEN || !text.is_char_boundary(text.len() - CRC_SUFFIX_LEN) {
        return Err("not a journal record (too short, or no checksum)".into());
    }
    let (head, tail) = text.split_at(text.len() - CRC_SUFFIX_LEN);
    let crc = tail
        .strip_prefix(",\"crc\":\"")
        .and_then(|t| t.strip_suffix("\"}"))
        .ok_or_else(|| "not a journal record (no checksum at the end of the line)".to_string())?;
    let body = format!("{head}}}");
    let want = checksum(&body);
    if crc != want {
        return Err(format!("checksum mismatch (recorded {crc}, computed {want}): the line was altered or damaged"));
    }
    let line: Line = serde_json::from_str(&body).map_err(|e| format!("unreadable record: {e}"))?;
    if line.seq != expect_seq {
        return Err(format!(
            "record number {} where {expect_seq} was expected: a record is missing or repeated",
            line.seq
        ));
    }
    let rec = match (line.event, line.note) {
        (Some(e), None) => Record::Event(e),
        (None, Some(n)) => Record::Note(n),
        _ => return Err("a record must hold exactly one of `event` and `note`".into()),
    };
    Ok((line.seq, rec))
}

pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<JournalRead, JournalError> {
    let mut out = JournalRead::default();
    let mut pos = 0;
    let mut lineno = 0;
    while pos < bytes.len() {
        lineno += 1;
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            // no newline: the process died while writing this line; the engine never acted on it
            out.torn_tail = true;
            break;
        };
        let raw = &bytes[pos..pos + nl];
        let corrupt = |reason: String| JournalError::Corrupt { path: path.to_path_buf(), line: lineno, reason };
        let text = std::str::from_utf8(raw).map_err(|_| corrupt("not UTF-8 text".into()))?;
        let rec = decode(text, out.last_record_seq() + 1).map_err(corrupt)?;
        out.records.push(rec);
        pos += nl + 1;
        out.valid_len = pos;
    }
    Ok(out)
}

/// Reads as much of a journal as is valid: the records before a damaged line, and the error naming that line.
/// For reports, which should show what is known even from a damaged journal.
pub fn read_journal_prefix(path: &Path) -> Result<(JournalRead, Option<JournalError>), JournalError> {
    let path = if path.is_dir() { path.join("journal.jsonl") } else { path.to_path_buf() };
    let bytes = std::fs::read(&path).map_err(JournalError::io("cannot read the journal", &path))?;
    match parse(&path, &bytes) {
        Ok(r) => Ok((r, None)),
        Err(e) => {
            let mut good = JournalRead::default();
            if let JournalError::Corrupt { line, .. } = &e {
                // the lines before the damaged one parsed; parse them again on their own
                let end = bytes.split_inclusive(|&b| b == b'\n').take(line.saturating_sub(1)).map(<[u8]>::len).sum();
                good = parse(&path, &bytes[..end]).unwrap_or_default();
            }
            Ok((good, Some(e)))
        }
    }
}

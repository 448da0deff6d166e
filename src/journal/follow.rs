//! Following a live run's journal, read-only: replay what is there, then poll for more with a backoff (no inotify:
//! works on any filesystem, including NFS home directories). Any number of followers can read one journal.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use super::base::Note;
use super::lock::pid_alive;
use super::read::{Record, decode};
use crate::engine::Event;
use crate::run::RunView;

const POLL_MIN: Duration = Duration::from_millis(50);
const POLL_MAX: Duration = Duration::from_millis(1000);

/// Replays a run's journal and then follows it as it grows, until the run finishes (its last `run_finished`
/// event: a resumed run has one per session that ended) or the receiver is dropped. Must be called inside a tokio runtime.
///
/// A damaged line stops the stream, with the line number on stderr. When the run's process dies without
/// finishing, a notice says the run can be resumed, and following goes on (a resume appends to the same journal).
pub fn follow(run_dir: &Path) -> mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    let path = run_dir.join("journal.jsonl");
    tokio::spawn(follow_task(path, tx));
    rx
}

async fn follow_task(path: PathBuf, tx: mpsc::UnboundedSender<Event>) {
    let mut pos: u64 = 0;
    let mut pending: Vec<u8> = Vec::new();
    let mut lineno = 0usize;
    let mut seq = 0u64;
    let mut delay = POLL_MIN;
    let mut session: Option<(String, u32)> = None;
    let mut idle = Duration::ZERO;
    let mut told_dead = false;
    let mut finished = false;
    let mut view = RunView::new();
    let here = super::meta::hostname();
    loop {
        if tx.is_closed() {
            return;
        }
        let mut grew = false;
        if let Ok(mut f) = std::fs::File::open(&path) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < pos {
                // a torn last line was cut off by a resume: we never consumed it
                pos = len;
                pending.clear();
            }
            if len > pos && f.seek(SeekFrom::Start(pos)).is_ok() {
                let mut chunk = Vec::new();
                if let Ok(n) = f.by_ref().take(len - pos).read_to_end(&mut chunk) {
                    pos += n as u64;
                    pending.extend_from_slice(&chunk);
                    grew = n > 0;
                }
            }
        }
        while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = pending.drain(..=nl).collect();
            lineno += 1;
            let text = String::from_utf8_lossy(&raw[..raw.len() - 1]).into_owned();
            match decode(&text, seq + 1) {
                Ok((s, rec)) => {
                    seq = s;
                    match rec {
                        Record::Event(ev) => {
                            // the run view says whether the run ended (a later session, a resume, may follow the
                            // end of an earlier one: its run_started reopens it)
                            view.apply(&ev);
                            finished = view.is_finished();
                            if tx.send(ev).is_err() {
                                return;
                            }
                        }
                        Record::Note(Note::Session { host, pid, .. }) => {
                            session = Some((host, pid));
                            told_dead = false;
                            finished = false;
                        }
                        Record::Note(_) => {}
                    }
                }
                Err(reason) => {
                    eprintln!("drconsole: {}:{lineno}: {reason}; stopped following", path.display());
                    return;
                }
            }
        }
        if finished {
            // the run ended, and nothing was written after its end
            return;
        }
        if grew {
            delay = POLL_MIN;
            idle = Duration::ZERO;
        } else {
            idle += delay;
            if !told_dead
                && idle >= Duration::from_secs(2)
                && let Some((host, pid)) = &session
                && *host == here
                && !pid_alive(*pid)
            {
                told_dead = true;
                eprintln!(
                    "drconsole: the run's process (pid {pid}) is no longer running and the run did not finish; \
                     it can be resumed with `drconsole resume RUN`. Still following."
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(POLL_MAX);
        }
    }
}

//! The emitter: numbers and stamps events and hands each to every sink, in order, with secrets redacted first.
//! A sink that cannot record an event (the journal, when S3 does not have it) halts the emitter: no later event
//! reaches any sink, the engine stops, and a cloud call made after the halt is refused ([`halted_here`]).

use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::clock::Clock;
use super::event::{Event, EventKind};

/// A consumer of events that must see each one before the engine goes on (the journal).
pub trait EventSink: Send {
    fn event(&mut self, ev: &Event);

    /// Whether the last event could not be recorded in a way that forbids the run to go on (asked after each
    /// [`EventSink::event`]): the emitter halts with it.
    fn halt(&mut self) -> Option<Halt> {
        None
    }
}

/// Why a run was halted: a sink could not record an event the engine must not act past. Carries the exit code
/// of the error that caused it (from [`crate::exit`]), which the frontend's command ends with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Halt {
    pub message: String,
    pub exit_code: u8,
}

tokio::task_local! {
    /// The halt token of the run whose step runs in this task ([`Emitter::scope`]).
    static HALTED: CancellationToken;
}

/// Inside a step's task ([`Emitter::scope`]): whether its run has been halted, so nothing more may be done in the
/// cloud. `false` outside any scope.
pub fn halted_here() -> bool {
    HALTED.try_with(CancellationToken::is_cancelled).unwrap_or(false)
}

impl EventSink for mpsc::UnboundedSender<Event> {
    fn event(&mut self, ev: &Event) {
        // a frontend that went away must not stop the run
        let _ = self.send(ev.clone());
    }
}

struct EmitterInner {
    seq: u64,
    sinks: Vec<Box<dyn EventSink>>,
    /// Secret values seen during the run: replaced by `***` in every event before any sink sees it.
    secrets: Vec<String>,
    /// Set by the first sink that halts the run; from then on no event reaches any sink.
    halt: Option<Halt>,
}

/// Numbers, stamps and delivers events to every sink, in order.
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Mutex<EmitterInner>>,
    clock: Clock,
    /// The secrets again, for [`Redactor`]s: usable inside a sink, while `inner` is locked.
    redact: Arc<Mutex<Vec<String>>>,
    /// Cancelled when a sink halts the run ([`EventSink::halt`]).
    stopped: CancellationToken,
}

impl Emitter {
    pub fn new(clock: Clock) -> Self {
        let inner = Arc::new(Mutex::new(EmitterInner { seq: 0, sinks: Vec::new(), secrets: Vec::new(), halt: None }));
        Self { inner, clock, redact: Arc::default(), stopped: CancellationToken::new() }
    }

    /// Why the run was halted, if it was.
    pub fn halted(&self) -> Option<Halt> {
        self.lock().halt.clone()
    }

    /// Cancelled when the run is halted: the engine stops on it.
    pub fn stopped(&self) -> CancellationToken {
        self.stopped.clone()
    }

    /// Runs a step's task so that [`halted_here`] answers for this run inside it.
    pub fn scope<F: std::future::Future>(&self, fut: F) -> impl std::future::Future<Output = F::Output> + use<F> {
        HALTED.scope(self.stopped.clone(), fut)
    }

    pub fn add_sink(&self, sink: Box<dyn EventSink>) {
        self.lock().sinks.push(sink);
    }

    /// A channel receiving every event from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Event> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.add_sink(Box::new(tx));
        rx
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EmitterInner> {
        // a sink that panicked leaves the data consistent (seq is bumped before delivery)
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a secret value (from Secrets Manager, or a parameter marked secret): it never leaves the engine
    /// in an event, so it reaches neither the journal, the reports, the logs nor the screen.
    pub fn register_secret(&self, value: &str) {
        // very short values would redact unrelated text; such secrets are refused by the actions that fetch them
        if value.len() >= 4 {
            let mut g = self.lock();
            if !g.secrets.iter().any(|s| s == value) {
                g.secrets.push(value.to_string());
                self.redact.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(value.to_string());
            }
        }
    }

    pub fn emit(&self, kind: EventKind) -> Event {
        let mut g = self.lock();
        let kind = if g.secrets.is_empty() { kind } else { redact(kind, &g.secrets) };
        g.seq += 1;
        let wall = self.clock.is_simulated().then(Timestamp::now);
        let ev = Event { seq: g.seq, ts: self.clock.now(), wall, kind };
        if g.halt.is_some() {
            return ev;
        }
        let mut halt = None;
        for s in &mut g.sinks {
            s.event(&ev);
            // a sink after the one that halted (the console, notifications) does not see what was not recorded
            halt = s.halt();
            if halt.is_some() {
                break;
            }
        }
        if let Some(h) = halt {
            g.halt = Some(h);
            self.stopped.cancel();
        }
        ev
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Continues numbering after `seq` (a resumed run goes on from its journal's last event).
    pub fn continue_from(&self, seq: u64) {
        let mut g = self.lock();
        g.seq = g.seq.max(seq);
    }

    /// A handle that redacts text with this emitter's secrets, for files written beside the journal. A sink may
    /// hold and use it (it neither keeps the emitter alive nor takes the emitter's lock).
    pub fn redactor(&self) -> Redactor {
        Redactor(self.redact.clone())
    }
}

/// Replaces the secrets registered with an [`Emitter`] by `***` in text.
#[derive(Clone)]
pub struct Redactor(Arc<Mutex<Vec<String>>>);

impl Redactor {
    pub fn redact(&self, text: &str) -> String {
        let g = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.iter().fold(text.to_string(), |t, s| if t.contains(s.as_str()) { t.replace(s.as_str(), "***") } else { t })
    }
}

/// Replaces every occurrence of a secret inside an event's strings.
fn redact(kind: EventKind, secrets: &[String]) -> EventKind {
    fn walk(v: &mut Value, secrets: &[String]) {
        match v {
            Value::String(s) => {
                for secret in secrets {
                    if s.contains(secret.as_str()) {
                        *s = s.replace(secret.as_str(), "***");
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, secrets)),
            Value::Object(m) => m.values_mut().for_each(|x| walk(x, secrets)),
            _ => {}
        }
    }
    let Ok(mut v) = serde_json::to_value(&kind) else { return kind };
    walk(&mut v, secrets);
    serde_json::from_value(v).unwrap_or(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the steps of the events it sees; halts on the event whose message is `halt`.
    struct Sink {
        seen: Arc<Mutex<Vec<String>>>,
        halt_on: Option<&'static str>,
        halt: Option<Halt>,
    }

    impl EventSink for Sink {
        fn event(&mut self, ev: &Event) {
            if let EventKind::StepWarning { message, .. } = &ev.kind {
                self.seen.lock().unwrap().push(message.clone());
                if self.halt_on == Some(message.as_str()) {
                    self.halt = Some(Halt { message: format!("cannot record {message}"), exit_code: 4 });
                }
            }
        }

        fn halt(&mut self) -> Option<Halt> {
            self.halt.take()
        }
    }

    fn warning(message: &str) -> EventKind {
        EventKind::StepWarning { step: "s".into(), message: message.into() }
    }

    #[tokio::test]
    async fn a_sink_that_cannot_record_halts_the_run_before_anything_else_sees_an_event() {
        let emitter = Emitter::new(Clock::new(1.0));
        let (journal, screen) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
        emitter.add_sink(Box::new(Sink { seen: journal.clone(), halt_on: Some("b"), halt: None }));
        emitter.add_sink(Box::new(Sink { seen: screen.clone(), halt_on: None, halt: None }));
        let stopped = emitter.stopped();
        let in_step = emitter.scope({
            let emitter = emitter.clone();
            async move {
                let before = halted_here();
                emitter.emit(warning("a"));
                emitter.emit(warning("b"));
                (before, halted_here())
            }
        });
        assert_eq!(in_step.await, (false, true), "a step sees the halt at once, before its next cloud call");
        emitter.emit(warning("c"));
        assert!(stopped.is_cancelled());
        assert!(!halted_here(), "outside a step's scope nothing is halted");
        assert_eq!(emitter.halted(), Some(Halt { message: "cannot record b".into(), exit_code: 4 }));
        assert_eq!(*journal.lock().unwrap(), ["a", "b"], "nothing is handed to the journal after the halt");
        assert_eq!(*screen.lock().unwrap(), ["a"], "the screen never sees what was not recorded");
    }
}

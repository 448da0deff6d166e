//! The emitter: numbers and stamps events and hands each to every sink, in order, with secrets redacted first.

use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde_json::Value;
use tokio::sync::mpsc;

use super::clock::Clock;
use super::event::{Event, EventKind};

/// A consumer of events that must see each one before the engine goes on (the journal).
pub trait EventSink: Send {
    fn event(&mut self, ev: &Event);
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
}

/// Numbers, stamps and delivers events to every sink, in order.
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Mutex<EmitterInner>>,
    clock: Clock,
    /// The secrets again, for [`Redactor`]s: usable inside a sink, while `inner` is locked.
    redact: Arc<Mutex<Vec<String>>>,
}

impl Emitter {
    pub fn new(clock: Clock) -> Self {
        let inner = Arc::new(Mutex::new(EmitterInner { seq: 0, sinks: Vec::new(), secrets: Vec::new() }));
        Self { inner, clock, redact: Arc::default() }
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
        for s in &mut g.sinks {
            s.event(&ev);
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

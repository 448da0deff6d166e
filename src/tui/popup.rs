//! Popups, gitui-style: each popup is its own type with `key(&mut self, key, operator) -> Reply`. While a popup is
//! open it consumes every key (a key never reaches two layers); what it asks of the rest of the console (send a
//! command, open another popup, quit) comes back as a [`Reply`] that the state machine applies. Nothing here knows
//! the run; everything a popup shows is given to it when it opens.
//!
//! Rules: a command that changes the run (skip, abort, pause, resume, retry, approve, answer) is sent only after a
//! deliberate key in a popup that named what it does (`y`, or Enter on a typed name or a reason followed by `y`);
//! text fields take letters as text (only Esc and Ctrl-G leave them, Ctrl-U clears them).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::keymap::{self, Action};
use crate::engine::{Candidate, Command};

/// The answer prefix that records an explicit acceptance of a recovery point older than the RPO.
pub use crate::actions::recovery_point::ACCEPT_RPO_LOSS;

/// What a popup asks for after a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The popup stays open (the key was used, or ignored).
    Keep,
    /// The popup closes; a question it answered stays pending (put aside).
    Close,
    /// Send a command to the engine, show a message, close.
    Send(Command, String),
    /// Replace this popup with another.
    Open(Box<Modal>),
    /// Open the skip prompt for a step (the state knows what depends on it).
    Skip(String),
    /// Quit the console (interrupting an active run).
    Quit,
    /// The drill's cleanup: `true` confirmed by typing the run id (it starts when the console closes), `false`
    /// declined (nothing is deleted).
    Cleanup(bool),
}

/// A popup.
#[derive(Debug, Clone, PartialEq)]
pub enum Modal {
    Help,
    Quit(QuitPopup),
    Confirm(ConfirmPopup),
    Manual(ManualPopup),
    Picker(Picker),
    RpoLoss(RpoLossPopup),
    Reason(ReasonPopup),
    Act(ActPopup),
    /// Remove what a drill created: type the run id or its short id.
    Cleanup(CleanupPopup),
    /// The whole text of a log line (index into the log).
    LogLine(usize),
}

impl Modal {
    pub fn key(&mut self, k: &KeyEvent, by: &str) -> Reply {
        let close = keymap::closes_popup(k);
        match self {
            Modal::Help => {
                if close || k.code == KeyCode::Char('?') {
                    Reply::Close
                } else {
                    Reply::Keep
                }
            }
            Modal::LogLine(_) => {
                if close || k.code == KeyCode::Enter {
                    Reply::Close
                } else {
                    Reply::Keep
                }
            }
            Modal::Quit(_) => match k.code {
                KeyCode::Char('y' | 'Y') => Reply::Quit,
                _ if close => Reply::Close,
                _ => Reply::Keep,
            },
            Modal::Confirm(p) => p.key(k, by),
            Modal::Manual(p) => p.key(k, by),
            Modal::Picker(p) => p.key(k, by),
            Modal::RpoLoss(p) => p.key(k, by),
            Modal::Reason(p) => p.key(k, by),
            Modal::Act(p) => p.key(k, by),
            Modal::Cleanup(p) => p.key(k),
        }
    }

    /// The step whose question this popup answers (prompts put aside stay pending for that step).
    pub fn prompt_step(&self) -> Option<&str> {
        match self {
            Modal::Confirm(p) => Some(&p.step),
            Modal::Manual(p) => Some(&p.step),
            Modal::Picker(p) => Some(&p.step),
            Modal::RpoLoss(p) => Some(&p.picker.step),
            Modal::Reason(ReasonPopup { purpose: Purpose::Skip { step, .. }, .. }) => Some(step),
            _ => None,
        }
    }

    /// The step this popup is about, if any (it closes when that step moves on without it).
    pub fn step(&self) -> Option<&str> {
        match self {
            Modal::Act(ActPopup { act: Act::Retry { step } }) => Some(step),
            m => m.prompt_step(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuitPopup {
    pub run_id: String,
}

/// A text field: letters are typed; Backspace, Ctrl-U clears.
fn edit(field: &mut String, k: &KeyEvent) -> bool {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    match k.code {
        KeyCode::Char('u') if ctrl => field.clear(),
        KeyCode::Backspace => {
            field.pop();
        }
        KeyCode::Char(c) if !ctrl => field.push(c),
        _ => return false,
    }
    true
}

/// A `confirm = true` step: its plan; destructive steps require typing the name of what they hit.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfirmPopup {
    pub step: String,
    pub title: String,
    pub plan: String,
    pub typed: Option<Typed>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Typed {
    /// What must be typed.
    pub name: String,
    /// What it is ("the instance that will be stopped").
    pub what: String,
    pub input: String,
    /// The last Enter did not match.
    pub mismatch: bool,
}

/// A typed name matches: case does not matter (DNS names), nor a trailing dot (a fully qualified DNS name) or
/// surrounding spaces.
pub fn name_matches(input: &str, name: &str) -> bool {
    let norm = |s: &str| s.trim().trim_end_matches('.').to_ascii_lowercase();
    let typed = norm(input);
    !typed.is_empty() && typed == norm(name)
}

impl ConfirmPopup {
    fn key(&mut self, k: &KeyEvent, by: &str) -> Reply {
        let step = self.step.clone();
        let approve = |by: &str| Reply::Send(Command::Approve { step: step.clone(), by: by.into() }, String::new());
        match &mut self.typed {
            None => match k.code {
                KeyCode::Char('y' | 'Y') => approve(by),
                KeyCode::Char('s') => Reply::Skip(step),
                _ if keymap::closes_popup(k) => Reply::Close,
                _ => Reply::Keep,
            },
            Some(t) => match k.code {
                KeyCode::Enter if name_matches(&t.input, &t.name) => approve(by),
                KeyCode::Enter => {
                    t.mismatch = true;
                    Reply::Keep
                }
                _ if keymap::cancels_input(k) => Reply::Close,
                _ => {
                    if edit(&mut t.input, k) {
                        t.mismatch = false;
                    }
                    Reply::Keep
                }
            },
        }
    }
}

/// A manual task: `y` when it is done.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualPopup {
    pub step: String,
    pub instructions: String,
}

impl ManualPopup {
    fn key(&mut self, k: &KeyEvent, by: &str) -> Reply {
        match k.code {
            KeyCode::Char('y' | 'Y') => {
                Reply::Send(Command::Approve { step: self.step.clone(), by: by.into() }, String::new())
            }
            KeyCode::Char('s') => Reply::Skip(self.step.clone()),
            _ if keymap::closes_popup(k) => Reply::Close,
            _ => Reply::Keep,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Time,
    Kind,
    Region,
    Size,
}

impl SortKey {
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Time => "time",
            SortKey::Kind => "kind",
            SortKey::Region => "region",
            SortKey::Size => "size",
        }
    }
    fn next(self) -> Self {
        match self {
            SortKey::Time => SortKey::Kind,
            SortKey::Kind => SortKey::Region,
            SortKey::Region => SortKey::Size,
            SortKey::Size => SortKey::Time,
        }
    }
}

/// The recovery point picker.
#[derive(Debug, Clone, PartialEq)]
pub struct Picker {
    pub step: String,
    pub message: String,
    pub candidates: Vec<Candidate>,
    pub rpo_secs: u64,
    pub sort: SortKey,
    /// Newest (or largest) first when true.
    pub descending: bool,
    pub filter: String,
    pub filtering: bool,
    /// Index into `visible()`.
    pub selected: usize,
}

impl Picker {
    pub fn new(step: String, message: String, candidates: Vec<Candidate>, rpo_secs: u64) -> Self {
        Self {
            step,
            message,
            candidates,
            rpo_secs,
            sort: SortKey::Time,
            descending: true,
            filter: String::new(),
            filtering: false,
            selected: 0,
        }
    }

    /// The candidates shown, filtered and sorted.
    pub fn visible(&self) -> Vec<&Candidate> {
        let f = self.filter.to_lowercase();
        let mut v: Vec<&Candidate> = self
            .candidates
            .iter()
            .filter(|c| {
                f.is_empty()
                    || [c.id.as_str(), c.kind.as_str(), c.region.as_str(), c.source.as_str()]
                        .iter()
                        .any(|s| s.to_lowercase().contains(&f))
            })
            .collect();
        v.sort_by(|a, b| {
            let o = match self.sort {
                SortKey::Time => a.time.cmp(&b.time),
                SortKey::Kind => a.kind.cmp(&b.kind).then(a.time.cmp(&b.time)),
                SortKey::Region => a.region.cmp(&b.region).then(a.time.cmp(&b.time)),
                SortKey::Size => a.size_gib.cmp(&b.size_gib).then(a.time.cmp(&b.time)),
            };
            let o = o.then_with(|| a.id.cmp(&b.id));
            if self.descending { o.reverse() } else { o }
        });
        v
    }

    /// How many candidates meet the RPO (in the whole list, not only the filtered rows).
    pub fn meeting(&self) -> usize {
        self.candidates.iter().filter(|c| c.rpo_met).count()
    }

    pub fn selected_candidate(&self) -> Option<&Candidate> {
        self.visible().get(self.selected).copied()
    }

    /// Re-sorts or re-filters keeping the cursor on the same candidate (or the nearest row when it is gone).
    fn keep_selection(&mut self, change: impl FnOnce(&mut Self)) {
        let id = self.selected_candidate().map(|c| c.id.clone());
        change(self);
        let v = self.visible();
        self.selected = match id.and_then(|id| v.iter().position(|c| c.id == id)) {
            Some(i) => i,
            None => self.selected.min(v.len().saturating_sub(1)),
        };
    }

    fn key(&mut self, k: &KeyEvent, by: &str) -> Reply {
        if self.filtering {
            match k.code {
                KeyCode::Enter => self.filtering = false,
                _ if keymap::cancels_input(k) => {
                    self.filtering = false;
                    self.keep_selection(|p| p.filter.clear());
                }
                _ => {
                    let mut f = self.filter.clone();
                    if edit(&mut f, k) {
                        self.keep_selection(|p| p.filter = f);
                    }
                }
            }
            return Reply::Keep;
        }
        let n = self.visible().len();
        match keymap::main_action(k) {
            _ if k.code == KeyCode::Enter => match self.selected_candidate() {
                Some(c) if c.rpo_met => Reply::Send(
                    Command::Answer { step: self.step.clone(), value: c.id.clone(), by: by.into() },
                    format!("recovery point {} chosen", c.id),
                ),
                // older than the RPO: the data loss is a decision of its own
                Some(c) => Reply::Open(Box::new(Modal::RpoLoss(RpoLossPopup {
                    candidate: Box::new(c.clone()),
                    meeting: self.meeting(),
                    picker: Box::new(self.clone()),
                }))),
                None => Reply::Keep,
            },
            _ if k.code == KeyCode::Char('/') => {
                self.filtering = true;
                Reply::Keep
            }
            _ if k.code == KeyCode::Char('s') => Reply::Skip(self.step.clone()),
            _ if k.code == KeyCode::Char('o') => {
                self.keep_selection(|p| p.sort = p.sort.next());
                Reply::Keep
            }
            _ if k.code == KeyCode::Char('O') => {
                self.keep_selection(|p| p.descending = !p.descending);
                Reply::Keep
            }
            _ if keymap::closes_popup(k) => Reply::Close,
            Some(a) => {
                self.selected = match a {
                    Action::Up => self.selected.saturating_sub(1),
                    Action::Down => (self.selected + 1).min(n.saturating_sub(1)),
                    Action::Top => 0,
                    Action::Bottom => n.saturating_sub(1),
                    Action::PageUp => self.selected.saturating_sub(10),
                    Action::PageDown => (self.selected + 10).min(n.saturating_sub(1)),
                    _ => self.selected,
                };
                Reply::Keep
            }
            None => Reply::Keep,
        }
    }
}

/// Choosing a point older than the RPO: say so, say whether one that meets it exists, and ask.
#[derive(Debug, Clone, PartialEq)]
pub struct RpoLossPopup {
    pub candidate: Box<Candidate>,
    /// How many candidates meet the RPO.
    pub meeting: usize,
    /// The picker to go back to.
    pub picker: Box<Picker>,
}

impl RpoLossPopup {
    fn key(&mut self, k: &KeyEvent, by: &str) -> Reply {
        match k.code {
            KeyCode::Char('y' | 'Y') => Reply::Send(
                Command::Answer {
                    step: self.picker.step.clone(),
                    value: format!("{ACCEPT_RPO_LOSS}{}", self.candidate.id),
                    by: by.into(),
                },
                format!("recovery point {} chosen: RPO loss accepted", self.candidate.id),
            ),
            _ if keymap::closes_popup(k) => Reply::Open(Box::new(Modal::Picker((*self.picker).clone()))),
            _ => Reply::Keep,
        }
    }
}

/// What a reason is asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Purpose {
    /// Skipping a step; `needed_by` lists the steps that use its outputs (and the references).
    Skip {
        step: String,
        needed_by: Vec<(String, Vec<String>)>,
    },
    Abort,
}

/// A reason typed, then `y` to act: stray letters end up as text, a stray Enter only asks.
#[derive(Debug, Clone, PartialEq)]
pub struct ReasonPopup {
    pub purpose: Purpose,
    pub reason: String,
    /// Enter was pressed with a reason: `y` acts, any other key goes back to the text.
    pub confirming: bool,
    /// Enter was pressed without a reason.
    pub empty: bool,
}

impl ReasonPopup {
    pub fn new(purpose: Purpose) -> Self {
        Self { purpose, reason: String::new(), confirming: false, empty: false }
    }

    fn key(&mut self, k: &KeyEvent, by: &str) -> Reply {
        if self.confirming {
            return match k.code {
                KeyCode::Char('y' | 'Y') => {
                    let reason = self.reason.trim().to_string();
                    match &self.purpose {
                        Purpose::Skip { step, .. } => Reply::Send(
                            Command::Skip { step: step.clone(), reason, by: by.into() },
                            format!("skipping `{step}`"),
                        ),
                        Purpose::Abort => Reply::Send(
                            Command::Abort { reason, by: by.into() },
                            "aborting: running steps are cancelled".into(),
                        ),
                    }
                }
                _ if keymap::cancels_input(k) => Reply::Close,
                _ => {
                    self.confirming = false;
                    Reply::Keep
                }
            };
        }
        match k.code {
            KeyCode::Enter if !self.reason.trim().is_empty() => {
                self.confirming = true;
                Reply::Keep
            }
            KeyCode::Enter => {
                self.empty = true;
                Reply::Keep
            }
            _ if keymap::cancels_input(k) => Reply::Close,
            _ => {
                if edit(&mut self.reason, k) {
                    self.empty = false;
                }
                Reply::Keep
            }
        }
    }
}

/// A command without parameters that changes the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    Pause,
    Resume,
    Retry { step: String },
}

/// `y` to do it; `n`, `q`, Esc not to. Other keys do nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct ActPopup {
    pub act: Act,
}

impl ActPopup {
    fn key(&mut self, k: &KeyEvent, by: &str) -> Reply {
        let by = by.to_string();
        match k.code {
            KeyCode::Char('y' | 'Y') => match &self.act {
                Act::Pause => {
                    Reply::Send(Command::Pause { by }, "pausing: running steps finish, nothing new starts".into())
                }
                Act::Resume => Reply::Send(Command::Resume { by }, "resuming the run".into()),
                Act::Retry { step } => {
                    Reply::Send(Command::Retry { step: step.clone(), by }, format!("retrying `{step}`"))
                }
            },
            _ if keymap::closes_popup(k) => Reply::Close,
            _ => Reply::Keep,
        }
    }
}

/// The typed confirmation of a drill's cleanup (as `drconsole cleanup RUN` asks on a terminal): only the run id
/// or its short id, exactly, confirms; Esc or Ctrl-G declines; letters are text.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanupPopup {
    pub run_id: String,
    /// The run's short id (`crate::drill::short_id`), also accepted.
    pub short: String,
    pub input: String,
    /// The last Enter did not match.
    pub mismatch: bool,
}

impl CleanupPopup {
    pub fn new(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_string(),
            short: crate::drill::short_id(run_id),
            input: String::new(),
            mismatch: false,
        }
    }

    /// Whether `input` names the run: the run id or its short id, exactly (surrounding spaces aside).
    pub fn matches(&self, input: &str) -> bool {
        let t = input.trim();
        !t.is_empty() && (t == self.run_id || t == self.short)
    }

    fn key(&mut self, k: &KeyEvent) -> Reply {
        match k.code {
            KeyCode::Enter if self.matches(&self.input) => Reply::Cleanup(true),
            KeyCode::Enter => {
                self.mismatch = true;
                Reply::Keep
            }
            _ if keymap::cancels_input(k) => Reply::Cleanup(false),
            _ => {
                if edit(&mut self.input, k) {
                    self.mismatch = false;
                }
                Reply::Keep
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }
    fn code(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn names_match_without_case_or_a_trailing_dot() {
        assert!(name_matches("cross-sell.example-fin.com.", "cross-sell.example-fin.com"));
        assert!(name_matches(" Cross-Sell.Example-Fin.com ", "cross-sell.example-fin.com"));
        assert!(name_matches("i-0a1b", "i-0a1b"));
        assert!(!name_matches("cross-sell.example-fin", "cross-sell.example-fin.com"));
        assert!(!name_matches("", ""));
        assert!(!name_matches(".", "."));
    }

    #[test]
    fn a_typed_confirmation_clears_with_ctrl_u_and_says_when_it_does_not_match() {
        let mut p = ConfirmPopup {
            step: "dns".into(),
            title: String::new(),
            plan: String::new(),
            typed: Some(Typed { name: "a.b".into(), what: String::new(), input: String::new(), mismatch: false }),
        };
        for c in "a.x".chars() {
            assert_eq!(p.key(&k(c), "me"), Reply::Keep);
        }
        assert_eq!(p.key(&code(KeyCode::Enter), "me"), Reply::Keep);
        assert!(p.typed.as_ref().is_some_and(|t| t.mismatch));
        assert_eq!(p.key(&KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL), "me"), Reply::Keep);
        assert_eq!(p.typed.as_ref().map(|t| (t.input.as_str(), t.mismatch)), Some(("", false)));
        for c in "a.b.".chars() {
            p.key(&k(c), "me");
        }
        assert_eq!(
            p.key(&code(KeyCode::Enter), "me"),
            Reply::Send(Command::Approve { step: "dns".into(), by: "me".into() }, String::new())
        );
    }

    #[test]
    fn a_reason_then_enter_only_asks_and_y_acts() {
        let mut p = ReasonPopup::new(Purpose::Abort);
        assert_eq!(p.key(&code(KeyCode::Enter), "me"), Reply::Keep);
        assert!(p.empty);
        for c in "s-sell.example".chars() {
            assert_eq!(p.key(&k(c), "me"), Reply::Keep);
        }
        assert_eq!(p.key(&code(KeyCode::Enter), "me"), Reply::Keep);
        assert!(p.confirming);
        // another letter goes back to the text, nothing is sent
        assert_eq!(p.key(&k('c'), "me"), Reply::Keep);
        assert!(!p.confirming);
        p.key(&code(KeyCode::Enter), "me");
        assert_eq!(
            p.key(&k('y'), "me"),
            Reply::Send(
                Command::Abort { reason: "s-sell.example".into(), by: "me".into() },
                "aborting: running steps are cancelled".into()
            )
        );
    }

    #[test]
    fn cleanup_needs_the_exact_run_id_or_short_id() {
        let mut p = CleanupPopup::new("20261121-030000-a1b2");
        assert_eq!(p.short, "a1b2");
        // the letters of the confirmation keys are text here: nothing confirms or declines
        for c in "ya1b".chars() {
            assert_eq!(p.key(&k(c)), Reply::Keep, "{c}");
        }
        assert_eq!(p.key(&code(KeyCode::Enter)), Reply::Keep);
        assert!(p.mismatch);
        assert_eq!(p.key(&KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)), Reply::Keep);
        assert!(!p.mismatch && p.input.is_empty());
        // another case, or a prefix, is not the id
        for bad in ["A1B2", "a1b", "20261121-030000", "a1b2x"] {
            assert!(!p.matches(bad), "{bad}");
        }
        for c in "a1b2".chars() {
            p.key(&k(c));
        }
        assert_eq!(p.key(&code(KeyCode::Enter)), Reply::Cleanup(true));
        assert!(p.matches("20261121-030000-a1b2"));
        let mut q = CleanupPopup::new("20261121-030000-a1b2");
        assert_eq!(q.key(&code(KeyCode::Esc)), Reply::Cleanup(false));
    }

    #[test]
    fn act_popups_need_y() {
        let mut p = ActPopup { act: Act::Pause };
        for c in "cross-sell.example-fin.com".chars() {
            if c == 'n' || c == 'q' {
                assert_eq!(p.key(&k(c), "me"), Reply::Close);
            } else {
                assert_eq!(p.key(&k(c), "me"), Reply::Keep, "{c}");
            }
        }
        assert!(matches!(p.key(&k('y'), "me"), Reply::Send(Command::Pause { .. }, _)));
    }
}

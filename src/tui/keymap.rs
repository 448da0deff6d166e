//! Keys: what each key does on the main screen, which keys close popups, and the help text (footer and `?`).
//! Vim-style and arrow keys both work; Esc is never the only way out (tmux delays it): `q` closes popups too,
//! and text fields close with Esc or Ctrl-G.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    FocusNext,
    FocusPrev,
    Follow,
    Help,
    Search,
    SearchNext,
    SearchPrev,
    Quit,
    /// Clears the search; never quits (Esc arrives late and by accident through tmux).
    Escape,
    Open,
    Approve,
    Skip,
    Retry,
    PauseResume,
    Abort,
    /// Switch between the steps screen and the timeline.
    Timeline,
    /// A finished drill: remove what it created (asks for the run id).
    Cleanup,
}

/// The action of a key on the main screen (no popup open).
pub fn main_action(k: &KeyEvent) -> Option<Action> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    Some(match k.code {
        KeyCode::Char('u') if ctrl => Action::PageUp,
        KeyCode::Char('d') if ctrl => Action::PageDown,
        KeyCode::Char('b') if ctrl => Action::PageUp,
        KeyCode::Char('f') if ctrl => Action::PageDown,
        _ if ctrl => return None,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Top,
        KeyCode::End | KeyCode::Char('G') => Action::Bottom,
        KeyCode::Tab | KeyCode::Char('l') => Action::FocusNext,
        KeyCode::BackTab | KeyCode::Char('h') => Action::FocusPrev,
        KeyCode::Char('f') => Action::Follow,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Char('/') => Action::Search,
        KeyCode::Char('n') => Action::SearchNext,
        KeyCode::Char('N') => Action::SearchPrev,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Esc => Action::Escape,
        KeyCode::Enter => Action::Open,
        KeyCode::Char('a') => Action::Approve,
        KeyCode::Char('s') => Action::Skip,
        KeyCode::Char('r') => Action::Retry,
        KeyCode::Char('p') => Action::PauseResume,
        KeyCode::Char('X') => Action::Abort,
        KeyCode::Char('t') => Action::Timeline,
        KeyCode::Char('c') => Action::Cleanup,
        _ => return None,
    })
}

/// Keys that close a popup without a text field: `q`, `n` (for yes/no questions), Esc, Ctrl-G.
pub fn closes_popup(k: &KeyEvent) -> bool {
    matches!(k.code, KeyCode::Char('q') | KeyCode::Char('n') | KeyCode::Esc)
        || (k.code == KeyCode::Char('g') && k.modifiers.contains(KeyModifiers::CONTROL))
}

/// Keys that close a text field (letters are typed into it): Esc, Ctrl-G.
pub fn cancels_input(k: &KeyEvent) -> bool {
    k.code == KeyCode::Esc || (k.code == KeyCode::Char('g') && k.modifiers.contains(KeyModifiers::CONTROL))
}

/// The help overlay: (keys, what they do), grouped; the first two groups on the left, the rest on the right.
pub const HELP: &[(&str, &[(&str, &str)])] = &[
    (
        "Move",
        &[
            ("j k ↓ ↑", "select, scroll a pane"),
            ("g G Home End", "first / last"),
            ("PgUp PgDn ^u^d", "page"),
            ("Tab h l", "steps → detail → log"),
            ("f", "follow the run again"),
            ("/ n N", "search, next, prev"),
            ("Enter (log)", "the whole log line"),
            ("t", "timeline ↔ steps"),
        ],
    ),
    ("Recovery point picker", &[("j k", "select"), ("o O", "sort by / reverse"), ("/", "filter"), ("Enter", "choose")]),
    (
        "Act (asks first; not in watch)",
        &[
            ("Enter a", "answer the waiting step"),
            ("y", "yes (in a popup)"),
            ("s", "skip (a reason, then y)"),
            ("r", "retry a failed step"),
            ("p", "pause / resume the run"),
            ("X", "abort (a reason, then y)"),
            ("c", "clean up a drill (its id)"),
        ],
    ),
    (
        "Leave",
        &[
            ("q Esc", "close popup / search"),
            ("q", "quit (asks if active)"),
            ("Esc ^g ^u", "leave / clear a field"),
            ("^c", "quit + interrupt (asks)"),
            ("?", "this help"),
        ],
    ),
];

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The console's screens, rendered with ratatui's TestBackend from synthetic event sequences with fixed timestamps,
//! at 80x24 and 160x48. Text snapshots show layout and words; style snapshots show each theme's colours.

use drconsole::tui::Theme;
use drconsole::tui::fixtures::{self, Events};
use drconsole::tui::state::{Input, State};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn key(s: &mut State, code: KeyCode) {
    s.handle(Input::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn screen(name: &str, events: &Events, prepare: impl Fn(&mut State)) {
    let theme = Theme::preset("dark").unwrap();
    for (w, h) in SIZES {
        let mut s = fixtures::state(events, true, (w, h));
        prepare(&mut s);
        let buf = fixtures::render(&s, &theme, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), fixtures::text(&buf));
    }
}

#[test]
fn running_run() {
    screen("running", &fixtures::running(), |_| {});
}

#[test]
fn running_step_detail_with_progress_and_resources() {
    screen("running_detail", &fixtures::running(), |s| {
        key(s, KeyCode::Char('k'));
        key(s, KeyCode::Char('k'));
        assert_eq!(s.selected_step().map(|x| x.info.id.as_str()), Some("restore_db"));
    });
}

#[test]
fn recovery_point_picker() {
    screen("picker", &fixtures::until_picker(), |_| {});
}

#[test]
fn recovery_point_picker_sorted_and_filtered() {
    screen("picker_filtered", &fixtures::until_picker(), |s| {
        key(s, KeyCode::Char('o')); // sort by kind
        key(s, KeyCode::Char('/'));
        for c in "west".chars() {
            key(s, KeyCode::Char(c));
        }
        key(s, KeyCode::Enter);
    });
}

#[test]
fn confirmation() {
    // a plain confirmation: the picker answered, a confirm = true step waiting
    let mut e = fixtures::running();
    e.push(
        700,
        drconsole::engine::EventKind::StepAwaitingApproval {
            step: "asg".into(),
            plan: "set crosssell-asg desired capacity to 3 in us-west-2".into(),
        },
    );
    screen("confirm", &e, |_| {});
}

#[test]
fn destructive_confirmation() {
    screen("confirm_destructive", &fixtures::at_cutover(), |s| {
        for c in "app.example".chars() {
            key(s, KeyCode::Char(c));
        }
    });
}

#[test]
fn failed_step_with_error() {
    screen("failed", &fixtures::failed(), |_| {});
}

#[test]
fn finished_run() {
    screen("finished", &fixtures::finished(), |_| {});
}

#[test]
fn manual_task_and_skip_reason() {
    let mut e = fixtures::finished();
    e.events.truncate(e.events.len() - 2); // before `announce` was skipped and the run finished
    e.push(
        1890,
        drconsole::engine::EventKind::StepStarted {
            step: "announce".into(),
            attempt: 1,
            plan: "ask the operator".into(),
            params: Default::default(),
        },
    );
    e.push(
        1890,
        drconsole::engine::EventKind::OperatorRequest {
            step: "announce".into(),
            prompt: drconsole::engine::Prompt::Done {
                instructions: "Tell the incident bridge that Cross-sell answers from us-west-2.".into(),
            },
        },
    );
    screen("manual", &e, |_| {});
    screen("skip_reason", &e, |s| {
        key(s, KeyCode::Char('s'));
        for c in "done by the IC".chars() {
            key(s, KeyCode::Char(c));
        }
    });
}

#[test]
fn help_overlay() {
    screen("help", &fixtures::running(), |s| key(s, KeyCode::Char('?')));
}

#[test]
fn quit_confirmation() {
    screen("quit", &fixtures::running(), |s| {
        s.handle(Input::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
    });
}

#[test]
fn watch_mode_is_labelled_read_only() {
    let theme = Theme::preset("dark").unwrap();
    let s = fixtures::state(&fixtures::at_cutover(), false, (80, 24));
    let text = fixtures::text(&fixtures::render(&s, &theme, 80, 24));
    assert!(text.contains("WATCH (read-only)"), "{text}");
    assert!(!text.contains("Confirm step"), "watch mode opens no confirmation:\n{text}");
    insta::assert_snapshot!("watch_80x24", text);
}

#[test]
fn log_search_highlights_matches() {
    screen("log_search", &fixtures::running(), |s| {
        key(s, KeyCode::Char('/'));
        for c in "nat".chars() {
            key(s, KeyCode::Char(c));
        }
        key(s, KeyCode::Enter);
    });
}

#[test]
fn each_theme_styles() {
    for name in ["dark", "light", "high-contrast", "monochrome"] {
        let theme = Theme::preset(name).unwrap();
        let s = fixtures::state(&fixtures::failed(), true, (80, 24));
        let buf = fixtures::render(&s, &theme, 80, 24);
        insta::assert_snapshot!(format!("theme_{name}_styles"), fixtures::styles(&buf));
    }
}

#[test]
fn tiny_terminal_does_not_panic() {
    let theme = Theme::preset("dark").unwrap();
    for (w, h) in [(1, 1), (20, 5), (40, 10), (59, 19), (80, 13)] {
        let mut s = fixtures::state(&fixtures::at_cutover(), true, (w, h));
        let _ = fixtures::render(&s, &theme, w, h);
        key(&mut s, KeyCode::Char('?'));
        let _ = fixtures::render(&s, &theme, w, h);
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The console's screens, rendered with ratatui's TestBackend from synthetic event sequences with fixed timestamps,
//! at 80x24 and 160x48. Text snapshots show layout and words; style snapshots show each theme's colours.
//! Every popup is also shown at 80x24 with the header (run state, RTO clock, RPO verdict) visible above it.

use drconsole::tui::Theme;
use drconsole::tui::fixtures::{self, Events};
use drconsole::tui::state::{Input, State};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn key(s: &mut State, code: KeyCode) {
    s.handle(Input::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn keys(s: &mut State, text: &str) {
    for c in text.chars() {
        key(s, KeyCode::Char(c));
    }
}

/// A popup at 80x24: the four header rows are drawn in full, no popup border crosses them.
fn popup_80(name: &str, events: &Events, prepare: impl Fn(&mut State)) {
    let theme = Theme::preset("dark").unwrap();
    let mut s = fixtures::state(events, true, (80, 24));
    prepare(&mut s);
    assert!(s.modal.is_some(), "{name}: no popup is open");
    let text = fixtures::text(&fixtures::render(&s, &theme, 80, 24));
    let header: Vec<&str> = text.lines().take(4).collect();
    assert!(header[0].contains("run 20261121-030000-a1b2"), "{name}:\n{text}");
    assert!(header[2].starts_with("RTO 2h00m"), "{name}:\n{text}");
    assert!(header[3].starts_with("RPO 1h00m"), "{name}:\n{text}");
    for l in &header {
        assert!(!l.contains('═') && !l.contains('║'), "{name}: a popup covers the header:\n{text}");
    }
    insta::assert_snapshot!(format!("popup_{name}_80x24"), text);
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

fn manual_task() -> Events {
    let mut e = fixtures::finished();
    e.events.truncate(e.events.len() - 2);
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
    e
}

#[test]
fn timeline_mid_run_and_finished() {
    screen("timeline_running", &fixtures::running(), |s| key(s, KeyCode::Char('t')));
    screen("timeline_cutover", &fixtures::at_cutover(), |s| {
        key(s, KeyCode::Char('q')); // the confirmation put aside
        key(s, KeyCode::Char('t'));
    });
    screen("timeline_finished", &fixtures::finished(), |s| key(s, KeyCode::Char('t')));
}

#[test]
fn the_timeline_marks_now_the_deadline_and_the_critical_path() {
    let theme = Theme::preset("dark").unwrap();
    let mut s = fixtures::state(&fixtures::running(), true, (160, 48));
    key(&mut s, KeyCode::Char('t'));
    let text = fixtures::text(&fixtures::render(&s, &theme, 160, 48));
    assert!(text.contains('│') && text.contains('┃'), "now and deadline lines:\n{text}");
    assert!(text.contains("▶ *restore_db"), "restore_db is on the critical path:\n{text}");
    assert!(text.contains('░'), "projected bars:\n{text}");
    assert!(text.contains("deadline 04:50:00"), "{text}");
}

#[test]
fn every_popup_at_80x24_leaves_the_header_visible() {
    let mut confirm = fixtures::running();
    confirm.push(
        700,
        drconsole::engine::EventKind::StepAwaitingApproval {
            step: "asg".into(),
            plan: "set crosssell-asg desired capacity to 3 in us-west-2".into(),
        },
    );
    popup_80("confirm", &confirm, |_| {});
    popup_80("confirm_destructive_mismatch", &fixtures::at_cutover(), |s| {
        keys(s, "app.example");
        key(s, KeyCode::Enter);
    });
    popup_80("confirm_destructive_matches", &fixtures::at_cutover(), |s| keys(s, "APP.example.com."));
    popup_80("picker", &fixtures::until_picker(), |_| {});
    popup_80("picker_none_meet_the_rpo", &fixtures::stale_picker(), |_| {});
    popup_80("rpo_loss", &fixtures::until_picker(), |s| {
        key(s, KeyCode::Char('G'));
        key(s, KeyCode::Enter);
    });
    popup_80("manual", &manual_task(), |_| {});
    popup_80("skip_needed_outputs", &fixtures::until_picker(), |s| {
        key(s, KeyCode::Char('s'));
        keys(s, "no backups");
    });
    popup_80("skip_confirming", &fixtures::running(), |s| {
        key(s, KeyCode::Char('s'));
        keys(s, "LB exists already");
        key(s, KeyCode::Enter);
    });
    popup_80("abort", &fixtures::running(), |s| {
        key(s, KeyCode::Char('X'));
        keys(s, "wrong account");
    });
    popup_80("pause", &fixtures::running(), |s| key(s, KeyCode::Char('p')));
    popup_80("retry", &fixtures::failed(), |s| key(s, KeyCode::Char('r')));
    popup_80("quit", &fixtures::running(), |s| {
        s.handle(Input::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
    });
    popup_80("help", &fixtures::running(), |s| key(s, KeyCode::Char('?')));
    popup_80("log_line", &fixtures::running(), |s| {
        key(s, KeyCode::Tab);
        key(s, KeyCode::Tab);
        key(s, KeyCode::Char('k'));
        key(s, KeyCode::Char('k'));
        key(s, KeyCode::Char('k'));
        key(s, KeyCode::Char('k'));
        key(s, KeyCode::Char('k'));
        key(s, KeyCode::Enter);
    });
}

#[test]
fn a_failing_region_gets_a_badge() {
    let theme = Theme::preset("dark").unwrap();
    for (w, h) in SIZES {
        let mut s = fixtures::state(&fixtures::region_outage(), true, (w, h));
        key(&mut s, KeyCode::Char('q'));
        let text = fixtures::text(&fixtures::render(&s, &theme, w, h));
        let row: &str = text.lines().nth(1).unwrap();
        assert!(row.contains("us-east-1 unreachable") && row.contains("WAITING FOR YOU"), "{w}x{h}:\n{text}");
    }
}

#[test]
fn the_rpo_verdict_is_never_cut() {
    let theme = Theme::preset("dark").unwrap();
    for w in [60, 80, 100, 120, 140, 160] {
        let s = fixtures::state(&fixtures::running(), true, (w, 30));
        let text = fixtures::text(&fixtures::render(&s, &theme, w, 30));
        assert!(text.lines().nth(3).unwrap().starts_with("RPO 1h00m met"), "{w}:\n{text}");
        assert!(text.lines().nth(2).unwrap().contains("since incident"), "{w}:\n{text}");
    }
}

#[test]
fn the_steps_pane_says_when_rows_are_hidden() {
    let theme = Theme::preset("dark").unwrap();
    let s = fixtures::state(&fixtures::running(), true, (80, 14));
    let text = fixtures::text(&fixtures::render(&s, &theme, 80, 14));
    assert!(text.contains("more "), "{text}");
}

#[test]
fn a_resumed_run_shows_what_earlier_sessions_did() {
    use drconsole::run::{Event, EventKind, Outcome};
    let theme = Theme::preset("dark").unwrap();
    // the first session: point chosen, the NAT gateway done, then the operator lost the terminal
    let mut history = fixtures::running();
    history.push(
        700,
        EventKind::RunFinished {
            outcome: Outcome::Interrupted,
            duration_secs: 700,
            rto_secs: 7200,
            rto_achieved_secs: 0,
            rto_met: false,
            succeeded: 2,
            failed: 0,
            skipped: 0,
            cancelled: 3,
            message: "interrupted by the operator".into(),
        },
    );
    for (w, h) in SIZES {
        let mut s = State::new(fixtures::notes(), "alice@bastion".into(), true);
        s.handle(Input::Resize(w, h));
        s.replay(&history.events);
        assert!(s.modal.is_none(), "history opens no popup");
        // `drconsole resume`: the engine announces the run again and goes on
        let seq = history.events.len() as u64 + 1;
        s.handle(Input::Event(Box::new(Event::new(
            seq,
            fixtures::at(1200),
            fixtures::run_started(fixtures::failover_steps()),
        ))));
        s.handle(Input::Tick(fixtures::at(1200)));
        s.handle(Input::Instant(10_000));
        let done: Vec<(&str, String)> = s
            .steps()
            .filter(|x| x.phase == drconsole::run::Phase::Succeeded)
            .map(|x| (x.info.id.as_str(), s.fmt_step_time(x)))
            .collect();
        assert_eq!(done, [("pick_point", "29s".to_string()), ("nat", "3m00s".to_string())]);
        assert_eq!(s.chosen().map(|c| c.id), Some("rds:crosssell-prod-2026-11-21-02-00".to_string()));
        assert!(s.active(), "the resumed session runs");
        let text = fixtures::text(&fixtures::render(&s, &theme, w, h));
        assert!(text.contains("Steps 2/9"), "{text}");
        insta::assert_snapshot!(format!("resumed_{w}x{h}"), text);
    }
}

#[test]
fn the_header_says_where_shared_state_lives() {
    let theme = Theme::preset("dark").unwrap();
    let mut s = fixtures::state(&fixtures::running(), true, (160, 48));
    s.shared_state = Some("s3://acme-dr-state/drconsole".into());
    let text = fixtures::text(&fixtures::render(&s, &theme, 160, 48));
    let line2 = text.lines().nth(1).unwrap();
    assert!(line2.contains("us-east-1 → us-west-2 · state s3://acme-dr-state/drconsole"), "{text}");
    // and without it, nothing is said
    let s = fixtures::state(&fixtures::running(), true, (160, 48));
    let text = fixtures::text(&fixtures::render(&s, &theme, 160, 48));
    assert!(!text.contains("state s3://"), "{text}");
}

/// One clock for every frontend: a run waits 60 s at a confirmation with no engine event; the console, a watcher
/// and headless output all show the same RTO left and a projected finish that moved by those 60 s.
#[test]
fn the_console_a_watcher_and_headless_show_one_clock_while_a_confirmation_waits() {
    use drconsole::headless::Printer;
    use drconsole::util::fmt_clock;
    let theme = Theme::preset("dark").unwrap();
    let events = fixtures::at_cutover();
    let waited = fixtures::at(1803 + 60);

    let mut console = fixtures::state(&events, true, (160, 48));
    let (finish0, margin0) = console.projected().unwrap();
    let left0 = console.rto_left().unwrap();
    console.handle(Input::Tick(waited));
    let mut watcher = fixtures::state(&events, false, (160, 48));
    watcher.handle(Input::Tick(waited));

    let (finish, margin) = console.projected().unwrap();
    assert_eq!(finish.duration_since(finish0).as_secs(), 60, "the projection did not move while the run waited");
    assert_eq!(margin, margin0 - 60);
    assert_eq!(console.rto_left(), Some(left0 - 60));
    assert_eq!(watcher.projected(), Some((finish, margin)), "the watcher's projection differs");
    assert_eq!(watcher.rto_left(), console.rto_left(), "the watcher's RTO left differs");

    // what each screen says: the header's clock line
    let hms = finish.strftime("%H:%M:%S").to_string();
    for (who, s) in [("console", &console), ("watcher", &watcher)] {
        let text = fixtures::text(&fixtures::render(s, &theme, 160, 48));
        let clock = text.lines().nth(2).unwrap();
        assert!(clock.contains(&format!(" {} left ", fmt_clock(left0 - 60))), "{who}: {clock}");
        assert!(clock.contains(&format!("finish {hms} ")), "{who}: {clock}");
    }

    // headless: the same events, then its tick at the same moment
    let mut out = Vec::new();
    let mut p = Printer::new(&mut out, false);
    for e in &events.events {
        p.print(e);
    }
    p.eta(waited);
    drop(p);
    let text = String::from_utf8(out).unwrap();
    let last = text.lines().rev().find(|l| l.contains(" eta ")).unwrap();
    assert!(last.contains(&format!("RTO {}]", fmt_clock(left0 - 60))), "headless: {last}");
    assert!(last.contains(&format!("projected finish {hms}Z, margin {}", fmt_clock(margin))), "headless: {last}");
}

/// Headless prints an `eta` on a tick only when time alone moves the projection: while a confirmation waits, not
/// in the moment after the run started (or a step ended) when nothing runs yet and the engine's projection and
/// next start are on their way. A journal watcher, which has no ticks, prints the same lines.
#[test]
fn a_headless_tick_prints_an_eta_while_a_person_is_awaited_but_not_between_an_event_and_the_next() {
    use drconsole::headless::Printer;
    let printed = |events: &Events, tick: jiff::Timestamp| {
        let mut out = Vec::new();
        let mut p = Printer::new(&mut out, false);
        for e in &events.events {
            p.print(e);
        }
        p.tick(tick);
        drop(p);
        String::from_utf8(out).unwrap().lines().filter(|l| l.contains(" eta ")).count()
    };
    // the run has started, its first projection not yet received: nothing runs, nothing waits for anyone
    let mut started = Events::default();
    started.push(0, fixtures::run_started(fixtures::failover_steps()));
    assert_eq!(printed(&started, fixtures::at(2)), 0, "an eta from a tick before the engine's first projection");
    // the cut-over waits for its confirmation: a minute later the projection has moved by a minute
    let events = fixtures::at_cutover();
    let before = printed(&events, fixtures::at(1803));
    assert_eq!(printed(&events, fixtures::at(1803 + 60)), before + 1, "no eta while the confirmation waited");
}

/// The same events as a drill's: `drill = true` in the run's start.
fn as_drill(mut e: Events) -> Events {
    for ev in &mut e.events {
        if let drconsole::engine::EventKind::RunStarted { drill, .. } = &mut ev.kind {
            *drill = true;
        }
    }
    e
}

#[test]
fn a_drill_says_drill_in_the_header_as_loudly_as_simulator() {
    let theme = Theme::preset("dark").unwrap();
    let s = fixtures::state(&as_drill(fixtures::running()), true, (80, 24));
    let buf = fixtures::render(&s, &theme, 80, 24);
    let text = fixtures::text(&buf);
    let row0 = text.lines().next().unwrap();
    let sim = row0.find(" SIMULATOR ").expect("the SIMULATOR badge");
    let drill = row0.find(" DRILL ").expect("the DRILL badge in the header");
    assert!(sim < drill, "{row0}");
    // every cell of the DRILL badge has the SIMULATOR badge's style (the row is ASCII up to there: byte = cell)
    let sim_style = buf[(u16::try_from(sim).unwrap(), 0)].style();
    for x in drill..drill + " DRILL ".len() {
        assert_eq!(buf[(u16::try_from(x).unwrap(), 0)].style(), sim_style, "cell {x} of the DRILL badge");
    }
    assert_ne!(sim_style, buf[(0, 1)].style(), "the badge stands out from the header's text");
    // the opening line of the log says DRILL too
    assert!(s.log[0].text.starts_with("DRILL (a recovery test"), "{}", s.log[0].text);
    // a real failover says neither
    let real = fixtures::state(&fixtures::running(), true, (80, 24));
    let real_text = fixtures::text(&fixtures::render(&real, &theme, 80, 24));
    assert!(!real_text.contains("DRILL") && !real.log[0].text.contains("DRILL"), "{real_text}");
    insta::assert_snapshot!("drill_header_80x24", text);
}

#[test]
fn a_finished_drill_asks_for_the_typed_run_id_before_cleanup() {
    use drconsole::tui::state::{CleanupChoice, Effect};
    // `c` on the finished screen of a drill: the popup
    popup_80("cleanup", &as_drill(fixtures::finished()), |s| key(s, KeyCode::Char('c')));
    popup_80("cleanup_mismatch", &as_drill(fixtures::finished()), |s| {
        key(s, KeyCode::Char('c'));
        keys(s, "a1b3");
        key(s, KeyCode::Enter);
    });

    // a wrong id does not confirm: the popup stays, nothing is asked of the driver
    let mut s = fixtures::state(&as_drill(fixtures::finished()), true, (80, 24));
    key(&mut s, KeyCode::Char('c'));
    for wrong in ["a1b3", "20261121-030000", "A1B2", "20261121-030000-a1b2x"] {
        s.handle(Input::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)));
        keys(&mut s, wrong);
        let effects = s.handle(Input::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        assert!(effects.is_empty(), "{wrong}: {effects:?}");
        assert_eq!(s.cleanup, CleanupChoice::NotAsked, "{wrong}");
        assert!(matches!(&s.modal, Some(drconsole::tui::state::Modal::Cleanup(p)) if p.mismatch), "{wrong}");
    }
    // the exact run id (or its short id) confirms, and the console closes for the cleanup to start
    s.handle(Input::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)));
    keys(&mut s, "20261121-030000-a1b2");
    let effects = s.handle(Input::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    assert_eq!(effects, [Effect::Quit]);
    assert_eq!(s.cleanup, CleanupChoice::Confirmed);

    // Esc: nothing is deleted, and the console says how to clean up later
    let mut s = fixtures::state(&as_drill(fixtures::finished()), true, (80, 24));
    key(&mut s, KeyCode::Char('c'));
    keys(&mut s, "a1b2");
    assert!(s.handle(Input::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE))).is_empty());
    assert_eq!(s.cleanup, CleanupChoice::Declined);
    assert!(s.modal.is_none());
    let later = "drconsole cleanup 20261121-030000-a1b2";
    assert!(s.flash.as_deref().is_some_and(|f| f.contains(later)), "{:?}", s.flash);
    assert!(s.log.last().is_some_and(|l| l.text.contains(later)), "the log keeps it");

    // not a drill: `c` says why and opens nothing; a drill still running: not yet
    let mut s = fixtures::state(&fixtures::finished(), true, (80, 24));
    key(&mut s, KeyCode::Char('c'));
    assert!(s.modal.is_none() && s.flash.as_deref().is_some_and(|f| f.contains("not a drill")), "{:?}", s.flash);
    let mut s = fixtures::state(&as_drill(fixtures::running()), true, (80, 24));
    key(&mut s, KeyCode::Char('c'));
    assert!(s.modal.is_none() && s.flash.as_deref().is_some_and(|f| f.contains("has not ended")), "{:?}", s.flash);
}

#[test]
fn cleanup_after_opens_the_cleanup_popup_when_the_drill_ends() {
    use drconsole::tui::state::Modal;
    let events = as_drill(fixtures::finished());
    let mut s = drconsole::tui::State::new(fixtures::notes(), "alice@bastion".into(), true);
    s.cleanup_after = true;
    s.handle(Input::Resize(80, 24));
    for ev in &events.events {
        s.handle(Input::Event(Box::new(ev.clone())));
    }
    assert!(matches!(&s.modal, Some(Modal::Cleanup(p)) if p.run_id == "20261121-030000-a1b2"), "{:?}", s.modal);
    // it opened by itself: a key already on its way is not taken as the confirmation
    assert!(s.guarded());
    // without --cleanup-after the finished drill opens nothing by itself
    let s = fixtures::state(&events, true, (80, 24));
    assert!(s.modal.is_none(), "{:?}", s.modal);
}

/// The footer names what Enter does in the focused pane: on the log it opens the line, not an answer.
#[test]
fn the_footer_says_what_enter_does_where_the_focus_is() {
    let theme = Theme::preset("dark").unwrap();
    let mut s = fixtures::state(&fixtures::at_cutover(), true, (160, 48));
    // the confirmation put aside (Esc: its field takes letters): the footer offers to answer it
    key(&mut s, KeyCode::Esc);
    assert!(s.modal.is_none());
    let footer = |s: &State| fixtures::text(&fixtures::render(s, &theme, 160, 48)).lines().last().unwrap().to_string();
    assert!(footer(&s).contains("Enter answer"), "{}", footer(&s));
    key(&mut s, KeyCode::Tab);
    key(&mut s, KeyCode::Tab);
    assert_eq!(s.focus, drconsole::tui::state::Focus::Log);
    let f = footer(&s);
    assert!(f.contains("Enter whole line") && !f.contains("answer"), "{f}");
    // and Enter there opens the log line, as the footer says
    key(&mut s, KeyCode::Enter);
    assert!(matches!(s.modal, Some(drconsole::tui::state::Modal::LogLine(_))), "{:?}", s.modal);
}

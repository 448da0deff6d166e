#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Console performance: `cargo bench --bench tui_render`.
//!
//! 1. Render time per frame at 160x48 with 10,000 log lines and 200 steps (ratatui TestBackend): the widget tree
//!    into a buffer, and a full `Terminal::draw` (render + diff against the previous frame).
//! 2. The real binary's CPU time over 10 idle seconds, read from /proc/PID/stat (utime + stime) while it runs in
//!    tmux: once paused at a confirmation (the RTO countdown ticks once a second) and once after the run finished
//!    (nothing moves: no ticks, no draws). Needs tmux and Linux; skipped with a note otherwise.
//!
//! Measures and prints; gates on nothing.

use std::process::Command;
use std::time::{Duration, Instant};

use drconsole::engine::{EventKind, StepInfo};
use drconsole::runbook::OnFailure;
use drconsole::tui::Theme;
use drconsole::tui::fixtures::{self, Events};
use drconsole::tui::state::Input;
use drconsole::tui::view::Screen;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;

fn big_run(steps: usize, log_lines: usize) -> Events {
    // 200 steps in 20 stages of 10 parallel branches
    let infos: Vec<StepInfo> = (0..steps)
        .map(|i| {
            let stage = i / 10;
            let needs = if stage == 0 { Vec::new() } else { vec![format!("step-{:03}", (stage - 1) * 10)] };
            StepInfo {
                id: format!("step-{i:03}"),
                title: format!("Restore volume {i} of the application tier in the secondary region"),
                action: "ebs.restore_volume".into(),
                needs,
                expected_secs: 300,
                confirm: false,
                on_failure: OnFailure::Pause,
                p50_secs: None,
                p90_secs: None,
            }
        })
        .collect();
    let mut e = Events::default();
    e.push(0, fixtures::run_started(infos));
    let mut t = 1;
    for i in 0..steps.min(60) {
        e.push(
            t,
            EventKind::StepStarted {
                step: format!("step-{i:03}"),
                attempt: 1,
                plan: format!("create volume {i} from snap-{i:012}"),
                params: serde_json::Map::new(),
            },
        );
        if i < 50 {
            e.push(
                t + 1,
                EventKind::StepSucceeded {
                    step: format!("step-{i:03}"),
                    attempt: 1,
                    duration_ms: 1000,
                    outputs: serde_json::Map::new(),
                },
            );
        }
        t += 1;
    }
    while e.events.len() < log_lines {
        let i = 50 + e.events.len() % 10;
        e.push(
            t,
            EventKind::StepProgress {
                step: format!("step-{i:03}"),
                message: format!("copying snapshot: {} GiB of 1024 GiB", e.events.len() % 1024),
                percent: Some((e.events.len() % 100) as f64),
                cause: None,
            },
        );
        t += 1;
    }
    e
}

fn stats(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len();
    let mean = samples.iter().sum::<Duration>() / n as u32;
    let p50 = samples[n / 2];
    let p99 = samples[(n * 99 / 100).min(n - 1)];
    println!("{name:<46} mean {mean:>10.1?}  p50 {p50:>10.1?}  p99 {p99:>10.1?}  ({n} frames)");
}

fn render_bench() {
    let theme = Theme::preset("dark").unwrap();
    let t0 = Instant::now();
    let events = big_run(200, 10_000);
    let mut state = fixtures::state(&events, true, (160, 48));
    println!(
        "state: {} steps, {} log lines (built from {} events in {:.1?})",
        state.step_count(),
        state.log.len(),
        events.events.len(),
        t0.elapsed()
    );
    let area = Rect::new(0, 0, 160, 48);
    let frames = 300;

    let mut samples = Vec::with_capacity(frames);
    for _ in 0..frames {
        let mut buf = Buffer::empty(area);
        let t = Instant::now();
        Screen { state: &state, theme: &theme }.render(area, &mut buf);
        samples.push(t.elapsed());
        std::hint::black_box(&buf);
    }
    stats("render into a buffer, 160x48", samples);

    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let mut samples = Vec::with_capacity(frames);
    for i in 0..frames {
        // a tick a frame: the countdown and elapsed times change, as in a live run
        state.handle(Input::Tick(fixtures::at(20_000 + i as i64)));
        let t = Instant::now();
        let _ = term.draw(|f| f.render_widget(Screen { state: &state, theme: &theme }, f.area()));
        samples.push(t.elapsed());
    }
    stats("Terminal::draw (render + diff), 160x48", samples);

    // the log scrolled to the middle, with a search highlighted
    for c in "/copying".chars() {
        state
            .handle(Input::Key(ratatui::crossterm::event::KeyEvent::from(ratatui::crossterm::event::KeyCode::Char(c))));
    }
    state.handle(Input::Key(ratatui::crossterm::event::KeyEvent::from(ratatui::crossterm::event::KeyCode::Enter)));
    let mut samples = Vec::with_capacity(frames);
    for _ in 0..frames {
        let t = Instant::now();
        let _ = term.draw(|f| f.render_widget(Screen { state: &state, theme: &theme }, f.area()));
        samples.push(t.elapsed());
    }
    stats("Terminal::draw with a log search, 160x48", samples);

    let mut samples = Vec::with_capacity(1000);
    let extra = big_run(200, 1200);
    for ev in extra.events.iter().skip(200).take(1000) {
        let t = Instant::now();
        state.handle(Input::Event(Box::new(ev.clone())));
        samples.push(t.elapsed());
    }
    let mut s2 = samples;
    s2.sort();
    println!("state update per engine event: mean {:.2?}", s2.iter().sum::<Duration>() / s2.len() as u32);
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the command name (which is in parentheses and may contain spaces)
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

fn tmux(socket: &str, args: &[&str]) -> String {
    let out = Command::new("tmux").arg("-L").arg(socket).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(socket: &str, text: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if tmux(socket, &["capture-pane", "-p", "-t", "bench"]).contains(text) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn idle_bench() {
    let has_tmux = Command::new("tmux").arg("-V").output().map(|o| o.status.success()).unwrap_or(false);
    if !has_tmux || !std::path::Path::new("/proc/self/stat").exists() {
        println!("idle CPU: skipped (needs tmux and /proc)");
        return;
    }
    let socket = format!("drconsole-bench-{}", std::process::id());
    let bin = env!("CARGO_BIN_EXE_drconsole");
    let dir = env!("CARGO_MANIFEST_DIR");
    let cmd = format!("cd '{dir}' && exec '{bin}' runbooks/examples/engine-demo.toml");
    let ok = Command::new("tmux")
        .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d", "-x", "160", "-y", "48", "-s", "bench", &cmd])
        .env("TERM", "xterm-256color")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        println!("idle CPU: skipped (tmux new-session failed)");
        return;
    }
    let pid: u32 = tmux(&socket, &["display", "-p", "-t", "bench", "#{pane_pid}"]).trim().parse().unwrap_or(0);
    let hz = clk_tck() as f64;
    let measure = |label: &str| {
        let before = cpu_ticks(pid).unwrap_or(0);
        std::thread::sleep(Duration::from_secs(10));
        let after = cpu_ticks(pid).unwrap_or(0);
        let ms = (after.saturating_sub(before)) as f64 * 1000.0 / hz;
        let total = after as f64 * 1000.0 / hz;
        println!(
            "idle CPU over 10 s, {label:<38} {ms:>6.0} ms ({:.2}% of a core; pid {pid}, {total:.0} ms since start)",
            ms / 100.0
        );
    };
    if wait_for(&socket, "Confirm step cutover") {
        measure("paused at a confirmation (1 Hz clock)");
        let _ = tmux(&socket, &["send-keys", "-t", "bench", "y"]);
        if wait_for(&socket, "RECOVERED") {
            measure("run finished (nothing moves)");
        }
    } else {
        println!("idle CPU: the console did not reach the confirmation");
    }
    let _ = tmux(&socket, &["kill-server"]);
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing and expects a quick exit
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    render_bench();
    if !args.iter().any(|a| a == "--no-idle") {
        idle_bench();
    }
}

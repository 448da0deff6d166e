#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Notifications to the bridge: a local webhook (an HTTP server on 127.0.0.1) receives the notifications of a
//! simulated incident (started, a person awaited, a step failed, finished; app, run id, incident id and a `text`
//! on each, the URL's secret nowhere in the journal or the report); a run whose webhook is down (connection
//! refused, or answering 500) ends with the same exit code as without notifications, the failures in its report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assert_cmd::Command;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A webhook on 127.0.0.1 answering `status` to every POST and keeping the bodies.
struct Hook {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Value>>>,
}

fn hook(status: u16) -> Hook {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let keep = got.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let keep = keep.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let keep = keep.clone();
                        async move {
                            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                                keep.lock().unwrap().push(v);
                            }
                            let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"ok")));
                            *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Hook { addr, got }
}

fn drconsole(state: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut c = Command::cargo_bin("drconsole").unwrap();
    c.current_dir(root()).env("DRCONSOLE_STATE_DIR", state).env_remove("DRCONSOLE_NOTIFY").args(args);
    c.timeout(Duration::from_secs(240));
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn run_dirs(state: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(state.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// Everything a run wrote, as text (journal, meta, reports, delivery log).
fn all_text(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            s.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
    s
}

#[test]
fn a_simulated_incident_is_heard_on_the_bridge() {
    let state = tempfile::tempdir().unwrap();
    let h = hook(200);
    // a Slack-like URL: its token is in the path
    let url = format!("http://{}/services/T0/B0/SECRETTOKEN42", h.addr);
    let (code, stderr) = drconsole(
        state.path(),
        &[
            "--headless",
            "--sim",
            "--speed",
            "1000",
            "--yes",
            "--drill",
            "tests/fixtures/incident/alpha.toml",
            "tests/fixtures/run/fail_pause.toml",
        ],
        &[("DRCONSOLE_NOTIFY", &url)],
    );
    // a step failed: the incident's exit code is 1, as it would be without notifications
    assert_eq!(code, 1, "{stderr}");
    let got = h.got.lock().unwrap().clone();
    let events: Vec<(String, String)> = got
        .iter()
        .map(|m| (m["app"].as_str().unwrap().to_string(), m["event"].as_str().unwrap().to_string()))
        .collect();
    for want in [
        ("alpha", "run_started"),
        ("alpha", "awaiting_person"),
        ("alpha", "run_finished"),
        ("test", "run_started"),
        ("test", "step_failed"),
        ("test", "run_finished"),
    ] {
        assert!(events.iter().any(|(a, e)| a == want.0 && e == want.1), "no {want:?} in {events:?}");
    }
    // the incident as a whole: started, then finished with each application's verdict and the exit code
    let of_incident: Vec<&Value> =
        got.iter().filter(|m| m["event"].as_str().unwrap().starts_with("incident_")).collect();
    let kinds: Vec<&str> = of_incident.iter().map(|m| m["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["incident_started", "incident_finished"], "{got:?}");
    let incident = of_incident[0]["incident_id"].as_str().unwrap().to_string();
    assert!(of_incident[0]["text"].as_str().unwrap().contains("started — "), "{:?}", of_incident[0]);
    let done = of_incident[1];
    assert_eq!(done["exit_code"], 1, "{done}");
    let text = done["text"].as_str().unwrap();
    assert!(text.starts_with("DRILL") && text.contains("alpha recovered") && text.contains("test aborted"), "{text}");
    assert_eq!(done["apps"].as_array().unwrap().len(), 2, "{done}");
    let incident_dir = state.path().join("incidents").join(&incident);
    let log = std::fs::read_to_string(incident_dir.join("notify.jsonl")).unwrap();
    assert!(log.contains("incident_finished") && log.contains("delivered"), "{log}");
    assert!(!log.contains("SECRETTOKEN42"), "{log}");
    // and the incident's report lists them, redacted
    let report = std::fs::read_to_string(incident_dir.join("report.md")).unwrap();
    let section = report.split("## Notifications").nth(1).unwrap_or_else(|| panic!("{report}"));
    assert!(section.contains("incident_started") && section.contains("incident_finished"), "{section}");
    assert!(!section.contains("SECRETTOKEN42"), "{section}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(incident_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["notifications"].as_array().map(Vec::len), Some(2), "{json}");
    for m in got.iter().filter(|m| !m["event"].as_str().unwrap().starts_with("incident_")) {
        assert_eq!(m["incident_id"], incident.as_str(), "{m}");
        assert!(m["run_id"].as_str().is_some_and(|r| !r.is_empty()), "{m}");
        let text = m["text"].as_str().unwrap();
        assert!(text.starts_with("DRILL"), "a drill's notification says so: {text}");
        assert!(text.contains(m["app"].as_str().unwrap()), "{text}");
    }
    let failed = got.iter().find(|m| m["event"] == "step_failed").unwrap();
    assert_eq!(failed["step"], "broken");
    let finished = got.iter().find(|m| m["event"] == "run_finished" && m["app"] == "test").unwrap();
    assert_eq!(finished["outcome"], "aborted", "{finished}");
    assert!(finished["text"].as_str().unwrap().contains("report.md"), "{finished}");
    // delivered, logged, reported; the token nowhere on disk nor on stderr
    for dir in run_dirs(state.path()) {
        let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
        assert!(report.contains("## Notifications"), "{report}");
        assert!(report.contains("| run_finished |"), "the last notification is in the report too: {report}");
        assert!(!report.contains("FAILED (the run went on"), "{report}");
        assert!(!all_text(&dir).contains("SECRETTOKEN42"), "the webhook's token leaked in {}", dir.display());
    }
    assert!(!stderr.contains("SECRETTOKEN42"), "{stderr}");
}

#[test]
fn a_run_whose_webhooks_are_down_ends_as_without_them_and_says_so_in_its_report() {
    let plain = tempfile::tempdir().unwrap();
    let args = ["--headless", "--sim", "--speed", "1000", "--yes", "tests/fixtures/run/ok.toml"];
    let (code_plain, stderr) = drconsole(plain.path(), &args, &[]);
    assert_eq!(code_plain, 0, "{stderr}");

    let state = tempfile::tempdir().unwrap();
    // a port nobody listens on (bound, then closed) and a webhook answering 500
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let broken = hook(500);
    let url_refused = format!("http://{refused}/hook/secret-a");
    let url_500 = format!("http://{}/hook/secret-b", broken.addr);
    let mut with = vec!["--notify", &url_refused, "--notify", &url_500];
    with.extend(args);
    let (code, stderr) = drconsole(state.path(), &with, &[]);
    assert_eq!(code, code_plain, "{stderr}");
    // the 500 webhook was tried again: more than one POST per notification
    let tries = broken.got.lock().unwrap().iter().filter(|m| m["event"] == "run_started").count();
    assert_eq!(tries, 3, "three attempts per notification");
    let dir = &run_dirs(state.path())[0];
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("## Notifications"), "{report}");
    assert!(report.contains("deliveries FAILED (the run went on without them)"), "{report}");
    assert!(report.contains("HTTP 500"), "{report}");
    assert!(report.contains(&format!("http://{refused}/***")), "{report}");
    assert!(report.to_lowercase().contains("connect"), "the refused connection is named: {report}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let n = json["notifications"].as_array().unwrap();
    assert!(n.iter().all(|d| d["result"] == "failed"), "{n:?}");
    assert!(n.iter().any(|d| d["event"] == "run_finished"), "{n:?}");
    let text = all_text(dir);
    assert!(!text.contains("secret-a") && !text.contains("secret-b"), "a webhook URL leaked");
    assert!(!stderr.contains("secret-a") && !stderr.contains("secret-b"), "{stderr}");
}

#[test]
fn a_bad_webhook_url_is_refused_before_anything_starts() {
    let state = tempfile::tempdir().unwrap();
    let (code, stderr) =
        drconsole(state.path(), &["--headless", "--sim", "--notify", "ftp://x/y", "tests/fixtures/run/ok.toml"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("http:// or https://"), "{stderr}");
    assert!(!state.path().join("runs").exists());
}

//! Team state on S3 (`--shared-state`), against moto server (which enforces S3 conditional writes).
//!
//! Two state directories stand for two hosts sharing one prefix. Host A runs the cross-sell regional failover
//! against moto (its cloud calls through a proxy that adds latency, so the run lasts long enough to be watched);
//! host B is refused by the S3 lock, watches A's run live from S3, and, once A is killed mid-run and its heartbeat
//! went stale, resumes it with `--take-over-lock` from an empty directory. The secondary region then holds exactly
//! what an uninterrupted run creates, and the journal on S3, read back object by object, is one history.
//! Then: processes racing for one lock (a fresh one, and a stale one taken over), and the fault proxy in front of
//! S3 (throttling, 5xx, dropped connections; then an outage longer than the wait window). The lock race and the
//! fault runs use the simulator as the runbook's cloud: only the shared state is under test there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::aws_world;
use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_world::{APPS, PRIMARY, SECONDARY};
use drconsole::engine::EventKind;
use drconsole::journal::{self, JournalRead, Note, Record};
use support::fault_proxy::{Fault, FaultConfig, FaultProxy};
use support::moto::MotoServer;

const BUCKET: &str = "drconsole-team-state";

fn tempdir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("shared-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    let c = aws_world::sdk_config(endpoint, SECONDARY).await;
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&c).force_path_style(true).build())
}

async fn create_bucket(c: &aws_sdk_s3::Client) {
    c.create_bucket()
        .bucket(BUCKET)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// The journal of a run on S3: its object keys and their bytes, in key order.
async fn s3_journal(c: &aws_sdk_s3::Client, prefix: &str, run_id: &str) -> Vec<(String, Vec<u8>)> {
    let keys: Vec<String> = c
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(format!("{prefix}/runs/{run_id}/journal/"))
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
        .iter()
        .flat_map(|p| p.contents().iter().filter_map(|o| o.key().map(str::to_string)))
        .collect();
    let mut out = Vec::new();
    for k in keys {
        let o = c.get_object().bucket(BUCKET).key(&k).send().await.unwrap();
        out.push((k, o.body.collect().await.unwrap().into_bytes().to_vec()));
    }
    out
}

/// Checks the S3 journal object by object (names follow on from 1, one record each, checksums and record numbers
/// valid) and returns it as a journal file's bytes and its parsed records.
fn check_s3_journal(objects: &[(String, Vec<u8>)], scratch: &Path) -> (Vec<u8>, JournalRead) {
    for (i, (k, b)) in objects.iter().enumerate() {
        assert!(k.ends_with(&format!("/journal/{:020}.jsonl", i + 1)), "object {i} is {k}: a record is missing");
        assert_eq!(b.iter().filter(|&&c| c == b'\n').count(), 1, "{k} holds one record");
        assert!(b.ends_with(b"\n"), "{k} ends with its newline");
    }
    let bytes: Vec<u8> = objects.iter().flat_map(|(_, b)| b.clone()).collect();
    let f = scratch.join("s3-journal.jsonl");
    std::fs::write(&f, &bytes).unwrap();
    let read = journal::read_journal(&f).unwrap_or_else(|e| panic!("the journal on S3 is not valid: {e}"));
    assert!(!read.torn_tail);
    assert_eq!(read.records.len(), objects.len());
    (bytes, read)
}

fn run_ids(state: &Path) -> Vec<String> {
    std::fs::read_dir(state.join("runs"))
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// A drconsole command for one "host": its own state directory, the shared state on `s3_endpoint`.
/// How old a lock's heartbeat must be to be stale, in these tests. 2 s (with a 300 ms heartbeat) was too short on a
/// loaded 2-core machine: a racer that started seconds after the other saw the winner's fresh lock as stale, took it
/// over with --take-over-lock and fenced the winner (processes_racing_for_one_lock_exactly_one_wins_every_time
/// failed 1 of 3 full runs with four builds beside it). The fencing was right; the window was not a real one.
const STALE: Duration = Duration::from_secs(5);

fn host(state: &Path, s3_endpoint: &str, prefix: &str) -> Command {
    let mut c = aws_world::drconsole_cmd();
    c.env("DRCONSOLE_STATE_DIR", state)
        .env("DRCONSOLE_SHARED_STATE", format!("s3://{BUCKET}/{prefix}"))
        .env("DRCONSOLE_SHARED_STATE_ENDPOINT_URL", s3_endpoint)
        .env("DRCONSOLE_SHARED_STATE_REGION", SECONDARY)
        .env("DRCONSOLE_SHARED_LOCK_HEARTBEAT", "300ms")
        .env("DRCONSOLE_SHARED_LOCK_STALE", format!("{}ms", STALE.as_millis()))
        .env("DRCONSOLE_SHARED_STATE_WAIT", "30s")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove(journal::KILL_AFTER_ENV)
        .stdin(Stdio::null());
    c
}

struct Out {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
}

fn output(mut c: Command) -> Out {
    let o = c.output().unwrap();
    out_of(o)
}

fn out_of(o: std::process::Output) -> Out {
    Out {
        code: o.status.code(),
        signal: std::os::unix::process::ExitStatusExt::signal(&o.status),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Whether the local journal would fsync this record (so it must be on S3 before the engine acts on it).
fn checkpoint(r: &Record) -> bool {
    match r {
        Record::Note(_) => true,
        Record::Event(e) => match &e.kind {
            EventKind::StepProgress { .. }
            | EventKind::Projection { .. }
            | EventKind::StepRetrying { .. }
            | EventKind::StepStarted { .. }
            | EventKind::StepAwaitingApproval { .. }
            | EventKind::OperatorRequest { .. } => false,
            EventKind::Resource { phase, .. } => {
                matches!(phase.as_str(), "creating" | "created" | "found" | "deleting")
            }
            _ => true,
        },
    }
}

// --- the two-host scenario on the moto failover ---------------------------------------------------------------

fn failover_args(cloud: &str, w: &aws_world::World) -> Vec<String> {
    let mut a: Vec<String> = ["--headless", "--yes", "--recovery-point", "latest+ebs=newest", "--endpoint-url", cloud]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(["--var".to_string(), format!("certificate_arn={}", w.certificate["cross-sell"])]);
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_one_run_lock_watch_kill_and_resume_from_an_empty_directory() {
    let moto = MotoServer::start();
    let tmp = tempdir("two-hosts");
    let runbook_name = APPS.iter().find(|a| a.name == "cross-sell").unwrap().runbook;

    // the reference: an uninterrupted run, local state only
    let w = aws_world::build(moto.endpoint()).await;
    let dir = aws_world::runbooks_for_moto(&tmp.join("ref-runbooks"), None);
    let mut c = host(&tmp.join("ref-state"), moto.endpoint(), "unused");
    c.env_remove("DRCONSOLE_SHARED_STATE").args(failover_args(moto.endpoint(), &w)).arg(dir.join(runbook_name));
    let r = output(c);
    assert_eq!(r.code, Some(0), "reference run:\n{}\n{}", r.stdout, r.stderr);
    let want = aws_world::inventory(moto.endpoint(), SECONDARY).await.shape();

    // the scenario, on a fresh world
    moto.reset();
    let w = aws_world::build(moto.endpoint()).await;
    let client = s3(moto.endpoint()).await;
    create_bucket(&client).await;
    // A's cloud calls go through a proxy that adds latency: the run lasts long enough to be watched and refused
    let slow = FaultProxy::start(
        moto.endpoint(),
        FaultConfig { latency: Duration::from_millis(60), ..FaultConfig::default() },
    );
    let (state_a, state_b) = (tmp.join("host-a"), tmp.join("host-b"));
    let runbooks_a = aws_world::runbooks_for_moto(&tmp.join("runbooks-a"), None);
    let runbooks_b = aws_world::runbooks_for_moto(&tmp.join("runbooks-b"), None);
    let prefix = "team";
    let kill_after = 70;
    let mut a = host(&state_a, moto.endpoint(), prefix);
    a.args(failover_args(slow.endpoint(), &w)).arg(runbooks_a.join(runbook_name));
    a.env(journal::KILL_AFTER_ENV, kill_after.to_string());
    let a = spawn(a);
    let a_pid = a.id();

    // wait for A's lock and first records on S3
    let started = Instant::now();
    let run_id = loop {
        let ids = run_ids(&state_a);
        if let Some(id) = ids.first()
            && s3_journal(&client, prefix, id).await.len() >= 3
        {
            break id.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "host A never got going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // B is refused by the lock, naming A
    let mut b = host(&state_b, moto.endpoint(), prefix);
    b.args(failover_args(slow.endpoint(), &w)).arg(runbooks_b.join(runbook_name));
    let refused = output(b);
    assert_eq!(refused.code, Some(4), "B must be refused:\n{}", refused.stderr);
    assert!(refused.stderr.contains("already running"), "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!("pid {a_pid}")), "the refusal names A: {}", refused.stderr);
    assert!(refused.stderr.contains(&run_id), "the refusal names A's run: {}", refused.stderr);
    assert!(run_ids(&state_b).is_empty(), "a refused run leaves nothing behind");

    // B watches A's run live, from S3
    let mut watch = host(&state_b, moto.endpoint(), prefix);
    watch.args(["watch", &run_id, "--json"]);
    let watch = spawn(watch);

    let a = a.wait_with_output().unwrap();
    let a = out_of(a);
    assert_eq!(a.signal, Some(9), "A was to be killed after record {kill_after}:\n{}", a.stderr);
    let a_local = std::fs::read(state_a.join("runs").join(&run_id).join("journal.jsonl")).unwrap();
    let a_read = journal::read_journal(&state_a.join("runs").join(&run_id)).unwrap();
    assert_eq!(a_read.last_record_seq(), kill_after);
    let on_s3_at_kill = s3_journal(&client, prefix, &run_id).await;
    let at_kill: Vec<u8> = on_s3_at_kill.iter().flat_map(|(_, b)| b.clone()).collect();
    assert!(a_local.starts_with(&at_kill), "S3 holds a prefix of A's journal");
    let lagging: Vec<&Record> = a_read.records.iter().skip(on_s3_at_kill.len()).map(|(_, r)| r).collect();
    assert!(!lagging.iter().any(|r| checkpoint(r)), "every checkpoint A wrote before it died is on S3: {lagging:?}");

    // B resumes from an empty directory once A's heartbeat is stale. (Both "hosts" share this machine's hostname,
    // so a resume without the flag would be taken for a resume on A's own host; the flag is what B passes.)
    tokio::time::sleep(STALE + Duration::from_millis(500)).await;
    let mut r = host(&state_b, moto.endpoint(), prefix);
    r.args(["resume", &run_id, "--headless", "--yes", "--recovery-point", "latest+ebs=newest", "--take-over-lock"]);
    r.args(["--runbook".to_string(), runbooks_b.join(runbook_name).display().to_string()]);
    let resumed = output(r);
    assert_eq!(resumed.code, Some(0), "B's resume:\n{}\n{}", resumed.stdout, resumed.stderr);
    assert!(resumed.stderr.contains(&format!("s3://{BUCKET}/{prefix}")), "where the state lives: {}", resumed.stderr);

    // the watcher saw the whole run, A's part and B's, and stopped at its end
    let watched = out_of(watch.wait_with_output().unwrap());
    assert_eq!(watched.code, Some(0), "{}", watched.stderr);
    let seen: Vec<u64> = watched
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["seq"].as_u64())
        .collect();

    // one continuous journal on S3, checked record by record
    let objects = s3_journal(&client, prefix, &run_id).await;
    let (bytes, read) = check_s3_journal(&objects, &tmp);
    assert!(bytes.starts_with(&at_kill), "A's records are the start of the shared history");
    let b_local = std::fs::read(state_b.join("runs").join(&run_id).join("journal.jsonl")).unwrap();
    assert_eq!(b_local, bytes, "B's local journal is the shared one");
    let sessions: Vec<(bool, u32)> = read
        .notes()
        .filter_map(|n| match n {
            Note::Session { resumed, pid, .. } => Some((*resumed, *pid)),
            _ => None,
        })
        .collect();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(sessions[0], (false, a_pid));
    assert!(sessions[1].0, "the second session is a resume");
    let takeover = read.notes().find_map(|n| match n {
        Note::LockTakenOver { previous, reason, .. } => Some((previous.pid, reason.clone())),
        _ => None,
    });
    let (prev, reason) = takeover.expect("the takeover is journalled");
    assert_eq!(prev, a_pid);
    assert!(reason.contains("--take-over-lock"), "{reason}");
    assert!(read.notes().any(|n| matches!(n, Note::SharedState { .. })));
    let events: Vec<u64> = read.events().map(|e| e.seq).collect();
    assert_eq!(seen, events, "the watcher saw every event, in order, once");
    let run_ids_in_events: Vec<&str> = read
        .events()
        .filter_map(|e| match &e.kind {
            EventKind::RunStarted { run_id, .. } => Some(run_id.as_str()),
            _ => None,
        })
        .collect();
    assert!(run_ids_in_events.len() == 2 && run_ids_in_events.iter().all(|r| *r == run_id), "{run_ids_in_events:?}");
    let outcome = read
        .events()
        .filter_map(|e| match &e.kind {
            EventKind::RunFinished { outcome, .. } => Some(outcome.as_str().to_string()),
            _ => None,
        })
        .last();
    assert_eq!(outcome.as_deref(), Some("recovered"));

    // no duplicate resource: the secondary region is what an uninterrupted run leaves
    let got = aws_world::inventory(moto.endpoint(), SECONDARY).await.shape();
    assert_eq!(got, want, "the secondary region differs from an uninterrupted run's");

    // any host lists the run, ended, and writes its report from S3
    let list = output({
        let mut c = host(&tmp.join("host-c"), moto.endpoint(), prefix);
        c.args(["runs", "--json"]);
        c
    });
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    let runs: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(runs[0]["run_id"], run_id.as_str());
    assert_eq!(runs[0]["status"], "ended");
    assert_eq!(runs[0]["outcome"], "recovered");
    let report = output({
        let mut c = host(&tmp.join("host-c"), moto.endpoint(), prefix);
        c.args(["report", &run_id]);
        c
    });
    assert_eq!(report.code, Some(0), "{}", report.stderr);
    assert!(report.stdout.contains(&format!("s3://{BUCKET}/{prefix}")), "the report says where the state lives");
    assert!(report.stdout.contains("lock taken over"), "{}", report.stdout);
    eprintln!(
        "figure: two hosts: {} records on S3 ({} from A), {} events watched live from host B",
        objects.len(),
        on_s3_at_kill.len(),
        seen.len()
    );
}

// --- the lock race --------------------------------------------------------------------------------------------

fn hold_runbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shared_state/hold.toml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_racing_for_one_lock_exactly_one_wins_every_time() {
    let moto = MotoServer::start();
    let client = s3(moto.endpoint()).await;
    create_bucket(&client).await;
    let tmp = tempdir("race");
    let prefix = "race";
    let key = format!("{prefix}/locks/{}.json", journal::lock_key("hold-the-lock", None, PRIMARY, SECONDARY));
    // a stale lock is not taken over without the flag
    let body = serde_json::json!({
        "user": "gone", "host": "gone-host", "pid": 1, "run_id": "20000101-000000-0000",
        "runbook": "hold-the-lock", "since": "2000-01-01T00:00:00Z", "heartbeat": "2000-01-01T00:00:00Z", "token": "0"
    });
    client.put_object().bucket(BUCKET).key(&key).body(body.to_string().into_bytes().into()).send().await.unwrap();
    tokio::time::sleep(STALE + Duration::from_millis(100)).await;
    let mut c = host(&tmp.join("no-flag"), moto.endpoint(), prefix);
    c.args(["--headless", "--yes"]).arg(hold_runbook());
    let r = output(c);
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    assert!(r.stderr.contains("gone-host") && r.stderr.contains("--take-over-lock"), "{}", r.stderr);
    client.delete_object().bucket(BUCKET).key(&key).send().await.unwrap();

    let races = 24;
    for i in 0..races {
        let stale_takeover = i % 2 == 1;
        if stale_takeover {
            // a lock left by a host that is gone: both racers pass --take-over-lock, one wins the If-Match
            let body = serde_json::json!({
                "user": "gone", "host": "gone-host", "pid": 1, "run_id": format!("20000101-000000-{i:04}"),
                "runbook": "hold-the-lock", "since": "2000-01-01T00:00:00Z", "heartbeat": "2000-01-01T00:00:00Z",
                "token": "0"
            });
            client
                .put_object()
                .bucket(BUCKET)
                .key(&key)
                .body(body.to_string().into_bytes().into())
                .send()
                .await
                .unwrap();
            tokio::time::sleep(STALE + Duration::from_millis(100)).await; // S3's Last-Modified ages past the stale window
        }
        let racers: Vec<Child> = ["x", "y"]
            .iter()
            .map(|h| {
                let mut c = host(&tmp.join(format!("{i}-{h}")), moto.endpoint(), prefix);
                c.args(["--headless", "--yes"]);
                if stale_takeover {
                    c.arg("--take-over-lock");
                }
                c.arg(hold_runbook());
                spawn(c)
            })
            .collect();
        let outs: Vec<Out> = racers.into_iter().map(|c| out_of(c.wait_with_output().unwrap())).collect();
        let winners: Vec<&Out> = outs.iter().filter(|o| o.code == Some(0)).collect();
        let losers: Vec<&Out> = outs.iter().filter(|o| o.code == Some(4)).collect();
        assert_eq!(
            (winners.len(), losers.len()),
            (1, 1),
            "race {i}: exactly one wins:\n{}",
            outs.iter().map(|o| format!("{:?}: {}", o.code, o.stderr)).collect::<Vec<_>>().join("\n---\n")
        );
        assert!(losers[0].stderr.contains("already running"), "race {i}: {}", losers[0].stderr);
        let winner_state =
            if outs[0].code == Some(0) { tmp.join(format!("{i}-x")) } else { tmp.join(format!("{i}-y")) };
        let ids = run_ids(&winner_state);
        assert_eq!(ids.len(), 1);
        assert!(losers[0].stderr.contains(&ids[0]), "race {i}: the loser names the winner's run: {}", losers[0].stderr);
        let read = journal::read_journal(&winner_state.join("runs").join(&ids[0])).unwrap();
        let took =
            read.notes().any(|n| matches!(n, Note::LockTakenOver { previous, .. } if previous.host == "gone-host"));
        assert_eq!(took, stale_takeover, "race {i}: a takeover is journalled, and only then");
        // the winner released the lock when it finished
        assert!(client.head_object().bucket(BUCKET).key(&key).send().await.is_err(), "race {i}: lock released");
    }
}

// --- faults in front of S3 ------------------------------------------------------------------------------------

fn sim_runbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/cross-sell.toml")
}

/// The simulator at 300x: S3 waits count 300 times over in simulated time, so faster would time steps out.
fn sim_args() -> Vec<String> {
    ["--headless", "--yes", "--recovery-point", "latest+ebs=newest", "--sim", "--speed", "300", "--seed", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_5xx_and_dropped_connections_in_front_of_s3_lose_or_duplicate_no_record() {
    let moto = MotoServer::start();
    let client = s3(moto.endpoint()).await;
    create_bucket(&client).await;
    let tmp = tempdir("faults");
    for (n, drop_after_forward) in [(0, false), (1, true)] {
        let faults = FaultConfig {
            throttle_rate: 0.08,
            error_5xx_rate: 0.06,
            drop_rate: 0.06,
            drop_after_forward,
            seed: 11 + n,
            ..FaultConfig::default()
        };
        let proxy = FaultProxy::start(moto.endpoint(), faults);
        let prefix = format!("faults-{n}");
        let state = tmp.join(format!("state-{n}"));
        let mut c = host(&state, proxy.endpoint(), &prefix);
        c.args(sim_args()).arg(sim_runbook());
        let r = output(c);
        assert_eq!(r.code, Some(0), "run {n}:\n{}\n{}", r.stdout, r.stderr);
        let ids = run_ids(&state);
        let local = std::fs::read(state.join("runs").join(&ids[0]).join("journal.jsonl")).unwrap();
        let objects = s3_journal(&client, &prefix, &ids[0]).await;
        let (bytes, read) = check_s3_journal(&objects, &tmp);
        assert_eq!(bytes, local, "run {n}: the mirror is complete: every record once, as written");
        let injected: u64 = proxy.faults().values().sum();
        assert!(injected >= 5, "run {n}: faults were injected: {:?}", proxy.faults());
        eprintln!(
            "figure: cross-sell on the sim with S3 behind the fault proxy (drop after forward: {drop_after_forward}): \
             {} records mirrored, {} S3 requests, faults {:?}",
            read.records.len(),
            proxy.count("total"),
            proxy.faults()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_longer_than_the_wait_stops_the_run_and_resume_catches_up() {
    let moto = MotoServer::start();
    let client = s3(moto.endpoint()).await;
    create_bucket(&client).await;
    let tmp = tempdir("outage");
    let down = Arc::new(AtomicBool::new(false));
    let puts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (d, p) = (down.clone(), puts.clone());
    // S3 goes away (every connection dropped) after 40 journal records were written
    let proxy = FaultProxy::start(
        moto.endpoint(),
        FaultConfig::default().with_hook(move |req| {
            if req.method == "PUT" && req.path.contains("/journal/") && p.fetch_add(1, Ordering::SeqCst) >= 40 {
                d.store(true, Ordering::SeqCst);
            }
            d.load(Ordering::SeqCst).then_some(Fault::Drop)
        }),
    );
    let prefix = "outage";
    let state = tmp.join("state");
    let mut c = host(&state, proxy.endpoint(), prefix);
    c.env("DRCONSOLE_SHARED_STATE_WAIT", "3s").args(sim_args()).arg(sim_runbook());
    let started = Instant::now();
    let r = output(c);
    assert_eq!(r.code, Some(1), "the run stops:\n{}", r.stderr);
    assert!(r.stderr.contains("unreachable"), "{}", r.stderr);
    assert!(r.stderr.contains("drconsole resume"), "it says how to go on: {}", r.stderr);
    eprintln!("figure: outage: the session stopped {:.1} s after start", started.elapsed().as_secs_f64());
    let ids = run_ids(&state);
    let run_dir = state.join("runs").join(&ids[0]);
    let local = std::fs::read(run_dir.join("journal.jsonl")).unwrap();
    let local_read = journal::read_journal(&run_dir).unwrap();
    let objects = s3_journal(&client, prefix, &ids[0]).await;
    let (bytes, _) = check_s3_journal(&objects, &tmp);
    assert!(local.starts_with(&bytes), "S3 holds a prefix of the local journal: nothing lost, nothing twice");
    assert!(objects.len() < local_read.records.len(), "the local journal holds what S3 missed");
    // the engine did not act past the first checkpoint S3 did not get
    let missing: Vec<&Record> = local_read.records.iter().skip(objects.len()).map(|(_, r)| r).collect();
    let checkpoints: Vec<usize> = missing.iter().enumerate().filter(|(_, r)| checkpoint(r)).map(|(i, _)| i).collect();
    assert!(
        checkpoints.is_empty() || checkpoints == [missing.len() - 1],
        "the session stopped at the first checkpoint S3 did not have: {} missing, checkpoints at {checkpoints:?}",
        missing.len()
    );

    // S3 is back: a resume on the same host uploads what S3 missed, then goes on (the dead session's stale lock
    // is its own run's: taken over without the flag)
    down.store(false, Ordering::SeqCst);
    puts.store(0, Ordering::SeqCst);
    proxy.set_config(FaultConfig::passthrough());
    tokio::time::sleep(STALE + Duration::from_millis(100)).await;
    let mut c = host(&state, proxy.endpoint(), prefix);
    c.args(["resume", &ids[0], "--headless", "--yes", "--recovery-point", "latest+ebs=newest"]);
    let r = output(c);
    assert_eq!(r.code, Some(0), "resume:\n{}", r.stderr);
    assert!(r.stderr.contains("caught up"), "{}", r.stderr);
    let local = std::fs::read(run_dir.join("journal.jsonl")).unwrap();
    let objects = s3_journal(&client, prefix, &ids[0]).await;
    let (bytes, _) = check_s3_journal(&objects, &tmp);
    assert_eq!(bytes, local, "after the resume the mirror is complete");
}

// --- configuration, offline -----------------------------------------------------------------------------------

fn with_state_section(dir: &Path, section: &str) -> PathBuf {
    let text = std::fs::read_to_string(hold_runbook()).unwrap();
    let p = dir.join("hold.toml");
    std::fs::write(&p, format!("{text}\n[state]\n{section}\n")).unwrap();
    p
}

#[test]
fn a_runbook_state_section_is_checked_and_adds_the_iam_statements() {
    let tmp = tempdir("config");
    let bad = with_state_section(&tmp, "shared = \"s3://Not_A_Bucket/x\"");
    let r = output({
        let mut c = Command::new(env!("CARGO_BIN_EXE_drconsole"));
        c.args(["check"]).arg(&bad);
        c
    });
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("hold.toml:") && r.stderr.contains("is not an S3 bucket name"), "{}", r.stderr);
    let typo = with_state_section(&tmp, "shared = \"s3://acme-dr-state/team\"\nkms = \"k\"");
    let r = output({
        let mut c = Command::new(env!("CARGO_BIN_EXE_drconsole"));
        c.args(["check"]).arg(&typo);
        c
    });
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("unknown field `kms` in [state]"), "{}", r.stderr);

    let good = with_state_section(&tmp, "shared = \"s3://acme-dr-state/team\"\nkms_key = \"alias/dr-state\"");
    let r = output({
        let mut c = Command::new(env!("CARGO_BIN_EXE_drconsole"));
        c.env_remove("DRCONSOLE_SHARED_STATE").args(["iam-policy"]).arg(&good);
        c
    });
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let policy: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let st = policy["Statement"].as_array().unwrap();
    let objects = st.iter().find(|s| s["Sid"] == "DrconsoleSharedStateObjects").expect("object statement");
    assert_eq!(objects["Resource"], "arn:aws:s3:::acme-dr-state/team/*");
    assert!(objects["Action"].as_array().unwrap().iter().any(|a| a == "s3:PutObject"));
    assert!(st.iter().any(|s| s["Sid"] == "DrconsoleSharedStateList"));
    assert!(st.iter().any(|s| s["Sid"] == "DrconsoleSharedStateKms" && s["Resource"] == "alias/dr-state"));

    // without shared state, none of them
    let r = output({
        let mut c = Command::new(env!("CARGO_BIN_EXE_drconsole"));
        c.env_remove("DRCONSOLE_SHARED_STATE").args(["iam-policy"]).arg(hold_runbook());
        c
    });
    assert!(!r.stdout.contains("DrconsoleSharedState"), "{}", r.stdout);

    // a bad --shared-state is a usage error
    let r = output({
        let mut c = Command::new(env!("CARGO_BIN_EXE_drconsole"));
        c.env("DRCONSOLE_STATE_DIR", tmp.join("state"))
            .args(["--headless", "--shared-state", "bucket/x"])
            .arg(hold_runbook());
        c
    });
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("--shared-state bucket/x: write s3://BUCKET/PREFIX"), "{}", r.stderr);
}

/// The forecast history with shared state (docs/forecast.md): each host's finished run is put on S3 as one object
/// (`history/<runbook>/<run id>.json`), and a host that never ran the runbook forecasts from the team's runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forecast_history_is_shared_between_hosts() {
    let moto = MotoServer::start();
    let client = s3(moto.endpoint()).await;
    create_bucket(&client).await;
    let tmp = tempdir("history");
    let prefix = "history";
    for (n, seed) in [("a", "1"), ("b", "2")] {
        let mut c = host(&tmp.join(n), moto.endpoint(), prefix);
        let mut args = sim_args();
        let i = args.iter().position(|a| a == "--seed").unwrap();
        args[i + 1] = seed.into();
        c.args(args).arg(sim_runbook());
        let r = output(c);
        assert_eq!(r.code, Some(0), "host {n}:\n{}\n{}", r.stdout, r.stderr);
    }
    let keys: Vec<String> = client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(format!("{prefix}/history/cross-sell-failover/"))
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    assert_eq!(keys.len(), 2, "one object per run: {keys:?}");
    // host C never ran it: `history` pulls both runs from S3 into its own history
    let mut c = host(&tmp.join("c"), moto.endpoint(), prefix);
    c.args(["history", "--json"]).arg(sim_runbook());
    let r = output(c);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 2, "{}", r.stdout);
    // host A, asked again, has its own run and B's, each once
    let mut c = host(&tmp.join("a"), moto.endpoint(), prefix);
    c.args(["history", "--json"]).arg(sim_runbook());
    let r = output(c);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 2, "{}", r.stdout);
}

/// `watch INCIDENT` from another host: host A runs an incident of two applications with the shared state; host B,
/// with an empty state directory, finds the incident's record on S3 and follows both applications' journals from
/// there (the console's board reads the same streams; here the NDJSON lines, each naming its application).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_of_an_incident_from_another_host_reads_its_record_and_runs_from_s3() {
    let moto = MotoServer::start();
    let client = s3(moto.endpoint()).await;
    create_bucket(&client).await;
    let tmp = tempdir("incident-watch");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run/ok.toml");
    let mut files = Vec::new();
    for app in ["alpha", "bravo"] {
        // one lock per runbook: each copy has a name and an application of its own
        let text = std::fs::read_to_string(&src)
            .unwrap()
            .replacen("name = \"ok\"", &format!("name = \"ok-{app}\""), 1)
            .replacen("app = \"test\"", &format!("app = \"{app}\""), 1);
        let f = tmp.join(format!("{app}.toml"));
        std::fs::write(&f, text).unwrap();
        files.push(f);
    }
    let (a, b) = (tmp.join("host-a"), tmp.join("host-b"));
    let mut c = host(&a, moto.endpoint(), "incident");
    c.args(["--headless", "--json", "--sim", "--speed", "100"]).args(&files);
    let r = output(c);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let inc = std::fs::read_dir(a.join("incidents")).unwrap().next().unwrap().unwrap().file_name();
    let inc = inc.to_string_lossy().into_owned();
    // host B has nothing of it
    assert!(!b.join("incidents").exists());
    let mut w = host(&b, moto.endpoint(), "incident");
    w.args(["watch", &inc, "--json"]);
    let r = output(w);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    for app in ["alpha", "bravo"] {
        let finished = r
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| v["app"] == app && v["type"] == "run_finished" && v["outcome"] == "recovered");
        assert!(finished, "{app}'s run read from S3 on host B:\n{}\n{}", r.stdout, r.stderr);
    }
    assert!(b.join("incidents").join(&inc).join("incident.json").is_file(), "the record was pulled into B's state");
}

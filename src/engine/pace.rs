//! The simulator's paced runtime: simulated time that depends only on the simulation, not on the machine.
//!
//! A simulated run's engine, actions and simulator run on their own single-threaded tokio runtime whose clock is
//! paused: tokio advances it only when every task is waiting, straight to the next timer. Work done between waits
//! (journal writes, rendering, a slow disk) therefore takes no simulated time, and the same seed gives the same
//! simulated durations at `--speed 50` and `--speed 2000`. A pacer task keeps simulated time from running ahead
//! of real time times `speed`: at each of its ticks it sleeps (really) until real time has caught up. While the
//! run only waits for a person, simulated time flows at `speed` times real time, as an operator expects.
//!
//! Rules: only simulated runs use it (AWS runs are real time); a clock for it is made inside its context
//! ([`Paced::clock`]); the frontends stay on the main runtime and talk to the engine over channels.

use std::time::Duration;

use jiff::Timestamp;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::run::Clock;

/// The longest a pacer tick may take in real time: commands from the console wait at most this long.
const MAX_TICK_REAL: Duration = Duration::from_millis(50);
/// The longest pacer tick in simulated time (ticks are identical at every speed above 20).
const MAX_TICK_SIM: Duration = Duration::from_secs(1);

/// A paced runtime on its own thread; dropping it stops the runtime (tasks still on it are dropped).
/// Simulated time stands still until [`Paced::go`]: setting up the world and the engine takes none of it.
pub struct Paced {
    handle: Handle,
    speed: f64,
    go: tokio::sync::watch::Sender<bool>,
    /// Set by the pacer, on the runtime's own thread, once `go` reached it: tasks gated on this wake up in the
    /// runtime's local queue, so tokio cannot find the runtime idle (and skip time ahead) between the pacer's
    /// first timer and theirs, as it could when a wake-up came from another thread.
    started: tokio::sync::watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Paced {
    /// Starts a paced runtime that lets simulated time run at most `speed` times faster than real time.
    pub fn start(speed: f64) -> std::io::Result<Self> {
        let speed = if speed.is_finite() && speed > 0.0 { speed } else { 1.0 };
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let (go_tx, go_rx) = tokio::sync::watch::channel(false);
        let (started_tx, started) = tokio::sync::watch::channel(false);
        let thread = std::thread::Builder::new().name("drconsole-sim".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(rt.handle().clone()));
            rt.block_on(pace(speed, go_rx, started_tx, stop_rx));
        })?;
        let handle = rx.recv().map_err(|_| std::io::Error::other("the simulator's runtime did not start"))??;
        Ok(Self { handle, speed, go: go_tx, started, stop: Some(stop_tx), thread: Some(thread) })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Lets simulated time run: tasks spawned with [`Paced::spawn`] start, the pacer starts pacing.
    pub fn go(&mut self) {
        let _ = self.go.send(true);
    }

    /// Spawns a task on this runtime that starts at [`Paced::go`]: until then nothing waits on a timer, so
    /// simulated time cannot move (tokio would otherwise skip ahead while the frontend is still starting).
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut started = self.started.clone();
        self.handle.spawn(async move {
            let _ = started.wait_for(|g| *g).await;
            fut.await
        })
    }

    /// A simulated clock starting at `wall`, reading this runtime's time.
    pub fn clock(&self, wall: Timestamp) -> Clock {
        let _g = self.handle.enter();
        Clock::simulated(wall, self.speed)
    }

    /// Runs `f` inside this runtime's context (things that read its clock when they are made).
    pub fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        let _g = self.handle.enter();
        f()
    }
}

impl Drop for Paced {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The pacer's tick in simulated time: 50 ms of real time, at most 1 s of simulated time.
pub fn tick(speed: f64) -> Duration {
    MAX_TICK_REAL.mul_f64(speed).min(MAX_TICK_SIM)
}

async fn pace(
    speed: f64,
    mut go: tokio::sync::watch::Receiver<bool>,
    started: tokio::sync::watch::Sender<bool>,
    mut stop: oneshot::Receiver<()>,
) {
    let tick = tick(speed);
    // no timer is pending before this: simulated time cannot move (nor be skipped ahead) until the run starts
    tokio::select! {
        _ = &mut stop => return,
        _ = go.wait_for(|g| *g) => {}
    }
    // from this thread: the gated tasks are queued before this task's first timer exists
    let _ = started.send(true);
    let real0 = std::time::Instant::now();
    let sim0 = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(tick) => {}
        }
        let due = sim0.elapsed().div_f64(speed);
        let spent = real0.elapsed();
        if due > spent {
            // blocks the runtime on purpose: simulated time stands still until real time catches up
            std::thread::sleep(due - spent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_time_does_not_depend_on_work_between_waits() {
        // two runs of the same "simulation": one does 30 ms of real work between its waits, the other none;
        // both see the same simulated times
        let run = |work: Duration| -> Vec<u64> {
            let mut paced = Paced::start(1000.0).expect("runtime");
            let clock = paced.clock(Timestamp::UNIX_EPOCH);
            let (tx, rx) = std::sync::mpsc::channel();
            paced.spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..5 {
                    std::thread::sleep(work);
                    clock.sleep(Duration::from_secs(7)).await;
                    seen.push(clock.elapsed().as_secs());
                }
                let _ = tx.send(seen);
            });
            paced.go();
            rx.recv_timeout(Duration::from_secs(10)).expect("the simulation finished")
        };
        let idle = run(Duration::ZERO);
        let busy = run(Duration::from_millis(30));
        assert_eq!(idle, vec![7, 14, 21, 28, 35]);
        assert_eq!(idle, busy);
    }

    #[test]
    fn simulated_time_is_paced_to_the_speed() {
        let mut paced = Paced::start(100.0).expect("runtime");
        let clock = paced.clock(Timestamp::UNIX_EPOCH);
        let (tx, rx) = std::sync::mpsc::channel();
        let started = std::time::Instant::now();
        paced.spawn(async move {
            clock.sleep(Duration::from_secs(20)).await;
            let _ = tx.send(());
        });
        paced.go();
        rx.recv_timeout(Duration::from_secs(10)).expect("woke up");
        // 20 s simulated at 100x is 200 ms real: not instantly (paced), not much later
        assert!(started.elapsed() >= Duration::from_millis(150), "{:?}", started.elapsed());
    }
}

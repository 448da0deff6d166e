//! Run time. The engine, the actions and the simulator read time only from a [`Clock`], so the simulator can run
//! faster than real time (`--speed`) and tests run on tokio's paused clock, deterministically.
//!
//! Two kinds of clock:
//! - a scaled clock ([`Clock::new`], [`Clock::starting_at`]): run time is real time times `speed`; AWS runs use it
//!   at speed 1.
//! - a simulated clock ([`Clock::simulated`]): run time is the time of the tokio runtime it was made in, which
//!   the simulator's paced runtime (`engine::pace`) advances only when every task waits, and paces to `speed`
//!   times real time. Simulated durations then come from the simulation alone: the same seed gives the same
//!   durations at any speed, on any machine (work done between waits takes no simulated time).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

#[derive(Debug, Clone)]
pub struct Clock {
    origin_wall: Timestamp,
    origin: tokio::time::Instant,
    /// Run time per unit of tokio time.
    scale: f64,
    /// The speed the run was asked to go at (reported in `run_started`).
    speed: f64,
    simulated: bool,
    /// Sleeps (polls, backoffs, deliberate waits) take this many times less tokio time; run time still reads the
    /// clock as it is. Only for an AWS API emulator ([`emulator_pace`]); 1 everywhere else.
    pace: f64,
}

/// The environment variable that makes waits against an AWS API emulator shorter (see [`emulator_pace`]).
pub const EMULATOR_PACE_VAR: &str = "DRCONSOLE_EMULATOR_PACE";

/// How many times shorter an AWS run's sleeps are: `DRCONSOLE_EMULATOR_PACE` (1 to 1000), honoured only when the run
/// talks to an emulator (`--endpoint-url`), where every resource is final at once and a 15-second poll interval or a
/// minute of waiting for an address to be released only makes the test suite slower. 1 otherwise: a real account's
/// waits are never shortened.
pub fn emulator_pace(endpoint_url: Option<&str>) -> f64 {
    if endpoint_url.is_none() {
        return 1.0;
    }
    std::env::var(EMULATOR_PACE_VAR)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|p| p.is_finite() && (1.0..=1000.0).contains(p))
        .unwrap_or(1.0)
}

fn valid(speed: f64) -> f64 {
    if speed.is_finite() && speed > 0.0 { speed } else { 1.0 }
}

impl Clock {
    /// A clock that reads wall time now and runs `speed` times faster than real time.
    pub fn new(speed: f64) -> Self {
        Self::starting_at(Timestamp::now(), speed)
    }

    /// A clock whose run time starts at `wall` (tests, resumed simulations) and runs `speed` times faster than
    /// the tokio clock.
    pub fn starting_at(wall: Timestamp, speed: f64) -> Self {
        let speed = valid(speed);
        Self {
            origin_wall: wall,
            origin: tokio::time::Instant::now(),
            scale: speed,
            speed,
            simulated: speed != 1.0,
            pace: 1.0,
        }
    }

    /// A simulated clock starting at `wall`: run time is the current tokio runtime's time, which a paced runtime
    /// advances. Must be made inside that runtime's context (`Handle::enter`).
    pub fn simulated(wall: Timestamp, speed: f64) -> Self {
        Self {
            origin_wall: wall,
            origin: tokio::time::Instant::now(),
            scale: 1.0,
            speed: valid(speed),
            simulated: true,
            pace: 1.0,
        }
    }

    /// This clock with sleeps `pace` times shorter (an emulator's runs: [`emulator_pace`]).
    pub fn with_pace(mut self, pace: f64) -> Self {
        self.pace = if pace.is_finite() && pace >= 1.0 { pace } else { 1.0 };
        self
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Run time is not wall time (the simulator): events also carry their wall time.
    pub fn is_simulated(&self) -> bool {
        self.simulated
    }

    /// Run time elapsed since the clock started.
    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed().mul_f64(self.scale)
    }

    pub fn now(&self) -> Timestamp {
        let e = SignedDuration::try_from(self.elapsed()).unwrap_or(SignedDuration::ZERO);
        self.origin_wall.saturating_add(e).unwrap_or(self.origin_wall)
    }

    /// The tokio duration that passes while `d` of run time passes.
    pub fn real(&self, d: Duration) -> Duration {
        d.div_f64(self.scale)
    }

    /// Sleeps for `d` of run time.
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(self.real(d).div_f64(self.pace)).await;
    }
}

/// Signed seconds from `a` to `b`.
pub fn secs_between(a: Timestamp, b: Timestamp) -> i64 {
    b.duration_since(a).as_secs()
}

//! Run time. The engine, the actions and the simulator read time only from a [`Clock`], so the simulator can run
//! faster than real time (`--speed`) and tests run on tokio's paused clock, deterministically.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

#[derive(Debug, Clone)]
pub struct Clock {
    origin_wall: Timestamp,
    origin: tokio::time::Instant,
    speed: f64,
}

impl Clock {
    /// A clock that reads wall time now and runs `speed` times faster than real time.
    pub fn new(speed: f64) -> Self {
        Self::starting_at(Timestamp::now(), speed)
    }

    /// A clock whose run time starts at `wall` (tests, resumed simulations).
    pub fn starting_at(wall: Timestamp, speed: f64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 { speed } else { 1.0 };
        Self { origin_wall: wall, origin: tokio::time::Instant::now(), speed }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Run time elapsed since the clock started.
    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed().mul_f64(self.speed)
    }

    pub fn now(&self) -> Timestamp {
        let e = SignedDuration::try_from(self.elapsed()).unwrap_or(SignedDuration::ZERO);
        self.origin_wall.saturating_add(e).unwrap_or(self.origin_wall)
    }

    /// The real duration that passes while `d` of run time passes.
    pub fn real(&self, d: Duration) -> Duration {
        d.div_f64(self.speed)
    }

    /// Sleeps for `d` of run time.
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(self.real(d)).await;
    }
}

/// Signed seconds from `a` to `b`.
pub fn secs_between(a: Timestamp, b: Timestamp) -> i64 {
    b.duration_since(a).as_secs()
}

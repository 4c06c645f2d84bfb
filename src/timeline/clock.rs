//! The runner's clock: wall-clock UTC as a function of tokio's monotonic [`Instant`], so a paused tokio clock drives a
//! whole conference day in tests and a rehearsal can shift and compress time. The only system clock read of the
//! timeline is [`Clock::system`].

use chrono::{DateTime, Duration, Utc};
use tokio::time::Instant;

/// `wall = origin_wall + (instant - origin) * speed`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    origin: Instant,
    origin_wall: DateTime<Utc>,
    /// The system's UTC at `origin`, to map the homeserver's timestamps onto this clock.
    origin_real: DateTime<Utc>,
    speed: f64,
}

impl Clock {
    /// Real time: now is now.
    pub fn system() -> Clock {
        let now = Utc::now();
        Clock { origin: Instant::now(), origin_wall: now, origin_real: now, speed: 1.0 }
    }

    /// A clock that reads `wall` at this moment of tokio's clock (a rehearsal: the schedule's first talk minus a few
    /// minutes; a test: any instant).
    pub fn starting_at(wall: DateTime<Utc>) -> Clock {
        Clock { origin: Instant::now(), origin_wall: wall, origin_real: Utc::now(), speed: 1.0 }
    }

    /// The same clock running `speed` times faster from now on (values below 0.001 are taken as 0.001).
    pub fn with_speed(self, speed: f64) -> Clock {
        let now = self.now();
        Clock { origin: Instant::now(), origin_wall: now, origin_real: Utc::now(), speed: speed.max(0.001) }
    }

    /// Wall-clock UTC now.
    pub fn now(&self) -> DateTime<Utc> {
        self.wall_at(Instant::now())
    }

    /// Wall-clock UTC at a tokio instant.
    pub fn wall_at(&self, at: Instant) -> DateTime<Utc> {
        let real = if at >= self.origin { (at - self.origin).as_secs_f64() } else { -(self.origin - at).as_secs_f64() };
        let micros = (real * self.speed * 1e6).round();
        self.origin_wall + Duration::microseconds(micros as i64)
    }

    /// What this clock read when the system clock read `real_ms` (milliseconds since the epoch, such as a server's
    /// `origin_server_ts`): the same for real time, shifted and scaled in a rehearsal.
    pub fn conference_ms(&self, real_ms: i64) -> i64 {
        if self.speed == 1.0 && self.origin_wall == self.origin_real {
            return real_ms;
        }
        let since = (real_ms - self.origin_real.timestamp_millis()) as f64;
        self.origin_wall.timestamp_millis() + (since * self.speed).round() as i64
    }

    /// The tokio instant at which the clock reads `wall` (now, for a wall time already past).
    pub fn instant_at(&self, wall: DateTime<Utc>) -> Instant {
        let ahead = (wall - self.now()).num_microseconds().unwrap_or(i64::MAX);
        if ahead <= 0 {
            return Instant::now();
        }
        let real = ahead as f64 / self.speed / 1e6;
        Instant::now() + std::time::Duration::from_secs_f64(real.min(1e9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paused_tokio_time_moves_the_wall_clock_and_speed_compresses_it() {
        let t0 = DateTime::parse_from_rfc3339("2022-02-05T08:00:00Z").map(|t| t.to_utc()).unwrap();
        let clock = Clock::starting_at(t0);
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        assert_eq!(clock.now(), t0 + Duration::seconds(90));
        let fast = clock.with_speed(60.0);
        let at = fast.instant_at(t0 + Duration::seconds(90) + Duration::minutes(60));
        tokio::time::sleep_until(at).await;
        assert_eq!(fast.now(), t0 + Duration::seconds(90) + Duration::minutes(60));
        assert_eq!(clock.now(), t0 + Duration::seconds(150), "one real second at speed 60 is a minute");
    }

    #[test]
    fn server_timestamps_map_onto_a_rehearsal_clock() {
        let real = Clock::system();
        assert_eq!(real.conference_ms(1_644_048_000_123), 1_644_048_000_123);
        let t0 = DateTime::parse_from_rfc3339("2022-02-05T08:00:00Z").map(|t| t.to_utc()).unwrap();
        let rehearsal = Clock::starting_at(t0).with_speed(10.0);
        let now_ms = Utc::now().timestamp_millis();
        let mapped = rehearsal.conference_ms(now_ms + 6_000);
        // Six real seconds later at 10x: a minute later on the conference clock (give or take the test's own time).
        let expected = t0.timestamp_millis() + 60_000;
        assert!((mapped - expected).abs() < 2_000, "{mapped} vs {expected}");
    }
}

//! The replica's one view timer, held back while no quorum is in reach.

use std::time::Duration;

use stele_consensus::TimerId;
use tokio::time::Instant;

/// The view timer the replica last set, and since when a quorum of the
/// voting power has been connected.
#[derive(Debug, Default)]
pub(super) struct ViewTimer {
    armed: Option<(TimerId, Instant)>,
    /// The armed timer's full duration.
    after_ms: u64,
    quorum_since: Option<Instant>,
}

impl ViewTimer {
    /// The replica's `SetTimer`: replaces any armed timer.
    pub(super) fn arm(&mut self, id: TimerId, after_ms: u64) {
        self.armed = Some((id, Instant::now() + Duration::from_millis(after_ms)));
        self.after_ms = after_ms;
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        self.armed.map(|(_, at)| at)
    }

    /// Whether a quorum is connected now; the timer counts a whole timeout
    /// from the moment one is.
    pub(super) fn set_quorum(&mut self, connected: bool) {
        match (connected, self.quorum_since) {
            (true, None) => self.quorum_since = Some(Instant::now()),
            (false, Some(_)) => self.quorum_since = None,
            _ => {}
        }
    }

    /// The deadline passed: the timer to hand to the replica, or `None`
    /// if it was re-armed instead ([`view_timer_fired`]).
    pub(super) fn fire(&mut self) -> Option<TimerId> {
        let (id, _) = self.armed.take()?;
        match view_timer_fired(self.quorum_since, self.after_ms, Instant::now()) {
            TimerFired::ViewChange => Some(id),
            TimerFired::WaitUntil(at) => {
                self.armed = Some((id, at));
                None
            }
        }
    }
}

/// What the driver does when the view timer of `after_ms` expires at
/// `now`.
#[derive(Debug, PartialEq, Eq)]
enum TimerFired {
    /// Tell the replica: it starts a view change.
    ViewChange,
    /// Re-arm the timer for this instant instead.
    WaitUntil(Instant),
}

/// The primary gets a whole timeout with a quorum in reach (at start, after
/// a partition) before this node votes it out; otherwise a node whose
/// quorum connected just before its timer expired moves to a higher view
/// alone and stays there. Without a quorum in reach a view change cannot
/// succeed, so the node waits for peers.
fn view_timer_fired(quorum_since: Option<Instant>, after_ms: u64, now: Instant) -> TimerFired {
    const NO_QUORUM_RECHECK: Duration = Duration::from_millis(200);
    match quorum_since.map(|t| t + Duration::from_millis(after_ms)) {
        Some(due) if due > now => TimerFired::WaitUntil(due),
        Some(_) => TimerFired::ViewChange,
        None => TimerFired::WaitUntil(now + NO_QUORUM_RECHECK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT_MS: u64 = 2_000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The start-up race the fault tests hit once in about four runs: the
    /// quorum connects 10 ms before the first timer expires. The timer must
    /// wait a whole timeout from that moment, not vote the primary out.
    #[test]
    fn a_quorum_that_connected_just_before_expiry_gets_a_whole_timeout() {
        let start = Instant::now();
        let connected = start + ms(TIMEOUT_MS - 10);
        let fired = start + ms(TIMEOUT_MS);
        assert_eq!(
            view_timer_fired(Some(connected), TIMEOUT_MS, fired),
            TimerFired::WaitUntil(connected + ms(TIMEOUT_MS))
        );
        // At the re-armed deadline the view change goes ahead.
        assert_eq!(
            view_timer_fired(Some(connected), TIMEOUT_MS, connected + ms(TIMEOUT_MS)),
            TimerFired::ViewChange
        );
    }

    #[test]
    fn a_quorum_in_reach_for_a_whole_timeout_changes_the_view() {
        let start = Instant::now();
        assert_eq!(
            view_timer_fired(Some(start), TIMEOUT_MS, start + ms(TIMEOUT_MS + 1)),
            TimerFired::ViewChange
        );
    }

    #[test]
    fn without_a_quorum_the_timer_waits_for_peers() {
        let now = Instant::now();
        assert_eq!(
            view_timer_fired(None, TIMEOUT_MS, now),
            TimerFired::WaitUntil(now + ms(200))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_fires_only_after_a_whole_timeout_with_a_quorum() {
        let mut timer = ViewTimer::default();
        timer.arm(TimerId(7), TIMEOUT_MS);
        // No quorum: re-armed, nothing for the replica.
        assert_eq!(timer.fire(), None);
        assert!(timer.deadline().is_some());
        timer.set_quorum(true);
        tokio::time::advance(ms(TIMEOUT_MS - 1)).await;
        assert_eq!(timer.fire(), None);
        tokio::time::advance(ms(1)).await;
        assert_eq!(timer.fire(), Some(TimerId(7)));
        assert_eq!(timer.deadline(), None);
    }
}

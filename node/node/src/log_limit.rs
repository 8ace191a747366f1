//! Log lines a peer can cause at will (an equivocation, an oversized
//! frame), kept to one per key per interval so a Byzantine validator cannot
//! flood the log: every event is still counted in the metrics, and each
//! line says how many went unlogged since the previous one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// When each key was last logged and how many events since.
#[derive(Debug)]
pub struct LogLimit<K> {
    interval: Duration,
    /// At most `keys_max` entries; keys are validators, so the set size.
    keys_max: usize,
    last: BTreeMap<K, (Instant, u64)>,
}

impl<K: Ord> LogLimit<K> {
    pub fn new(interval: Duration, keys_max: usize) -> LogLimit<K> {
        LogLimit {
            interval,
            keys_max: keys_max.max(1),
            last: BTreeMap::new(),
        }
    }

    /// Records one event of `key` at `now`: `Some(unlogged)` if a line
    /// should be written now (`unlogged` events of this key went unlogged
    /// since its last line), `None` to stay quiet.
    pub fn event(&mut self, key: K, now: Instant) -> Option<u64> {
        if let Some((at, unlogged)) = self.last.get_mut(&key) {
            if now.saturating_duration_since(*at) < self.interval {
                *unlogged += 1;
                return None;
            }
            let n = *unlogged;
            *at = now;
            *unlogged = 0;
            return Some(n);
        }
        if self.last.len() >= self.keys_max {
            let interval = self.interval;
            self.last
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < interval);
            if self.last.len() >= self.keys_max {
                return None;
            }
        }
        self.last.insert(key, (now, 0));
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_key_per_interval_with_the_count_of_the_quiet_ones() {
        let t0 = Instant::now();
        let mut log = LogLimit::new(Duration::from_secs(30), 2);
        assert_eq!(log.event('a', t0), Some(0));
        for _ in 0..1000 {
            assert_eq!(log.event('a', t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(log.event('b', t0), Some(0));
        // Full: a third key stays quiet until an entry is old.
        assert_eq!(log.event('c', t0 + Duration::from_secs(1)), None);
        assert_eq!(log.event('a', t0 + Duration::from_secs(30)), Some(1000));
        assert_eq!(log.event('c', t0 + Duration::from_secs(61)), Some(0));
    }
}

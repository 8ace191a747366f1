//! The events of a filter, read from the index in chain order.
//!
//! Each part of the filter the index knows (the contract, each topic it
//! names) is a stream of positions in order; the matching events are the
//! positions in every stream, found by leapfrogging: each stream seeks to
//! the furthest position any other has reached, until all agree. The work
//! is bounded by the rows of the streams within the page's heights, never
//! more than the events a scan of the same blocks would read.

use stele_client::api::{EventCursor, EventFilter, EventLog};
use stele_state::CommittedView;
use stele_state::rocksdb::{DB, DBRawIteratorWithThreadMode};
use stele_types::{Event, Hash, Limits, decode};

use super::keys::*;
use crate::store::StoreError;

/// One part of a filter: the keys of one prefix, positioned.
struct Stream<'v> {
    prefix: Vec<u8>,
    iter: DBRawIteratorWithThreadMode<'v, DB>,
    /// The iterator's position, `None` when it has run out.
    at: Option<Position>,
    started: bool,
}

impl Stream<'_> {
    fn read(&mut self) -> Result<(), StoreError> {
        self.at = match self.iter.key() {
            Some(key) => Some(
                key_position(key, self.prefix.len())
                    .ok_or(StoreError::CorruptIndexRow { len: key.len() })?,
            ),
            None => {
                self.iter.status().map_err(stele_state::StateError::from)?;
                None
            }
        };
        Ok(())
    }

    /// Moves to the first position at or after `target`: one step when
    /// that is the next row (a single stream walks its rows in order),
    /// else a seek.
    fn advance_to(&mut self, target: Position) -> Result<(), StoreError> {
        if self.started {
            match self.at {
                Some(p) if p >= target => return Ok(()),
                None => return Ok(()),
                Some(_) => {
                    self.iter.next();
                    self.read()?;
                    if self.at.is_none_or(|p| p >= target) {
                        return Ok(());
                    }
                }
            }
        }
        self.started = true;
        self.iter.seek(with_position(&self.prefix, target));
        self.read()
    }
}

/// The events matching a filter from a start position, read from the index
/// through one view. Only for heights the events coverage includes (see
/// [`super::coverage`]); the caller checks.
pub struct IndexedEvents<'v> {
    view: &'v CommittedView,
    filter: &'v EventFilter,
    streams: Vec<Stream<'v>>,
    /// The next position to look at; `None` when done.
    next: Option<Position>,
    limits: Limits,
}

impl std::fmt::Debug for IndexedEvents<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexedEvents")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<'v> IndexedEvents<'v> {
    /// The events of `filter` from `start` up to height `last`, or `None`
    /// if the filter names neither a contract nor a topic (the index has
    /// nothing to narrow it by).
    pub fn new(
        view: &'v CommittedView,
        filter: &'v EventFilter,
        start: EventCursor,
        last: u64,
    ) -> Result<Option<Self>, StoreError> {
        let mut streams = Vec::new();
        let mut add = |cf: &str, prefix: Vec<u8>| -> Result<(), StoreError> {
            let lower = with_position(&prefix, 0);
            let upper = with_position(&prefix, position(last.saturating_add(1), 0, 0));
            let iter = view.raw_iterator_cf(cf, lower, upper)?;
            streams.push(Stream {
                prefix,
                iter,
                at: None,
                started: false,
            });
            Ok(())
        };
        if let Some(contract) = &filter.contract {
            add(CF_EVENTS_BY_CONTRACT, contract_prefix(contract))?;
        }
        for (slot, topic) in filter.topics.iter().enumerate().take(TOPIC_POSITIONS_MAX) {
            if let Some(topic) = topic {
                add(CF_EVENTS_BY_TOPIC, topic_prefix(slot, topic))?;
            }
        }
        if streams.is_empty() {
            return Ok(None);
        }
        Ok(Some(IndexedEvents {
            view,
            filter,
            streams,
            next: Some(position(start.height, start.tx_index, start.event_index)),
            limits: Limits {
                input_bytes_max: usize::MAX,
                ..Limits::DEFAULT
            },
        }))
    }

    /// The first position at or after `target` in every stream, at most at
    /// height `last`.
    fn align(&mut self, mut target: Position, last: u64) -> Result<Option<Position>, StoreError> {
        loop {
            let mut agreed = true;
            for stream in &mut self.streams {
                stream.advance_to(target)?;
                let Some(p) = stream.at else {
                    return Ok(None);
                };
                if position_parts(p).0 > last {
                    return Ok(None);
                }
                if p > target {
                    target = p;
                    agreed = false;
                }
            }
            if agreed {
                return Ok(Some(target));
            }
        }
    }

    /// The next matching event at height `last` at most (`last` may only
    /// shrink from one call to the next).
    pub fn next_event(&mut self, last: u64) -> Result<Option<EventLog>, StoreError> {
        while let Some(target) = self.next {
            let Some(p) = self.align(target, last)? else {
                return Ok(None);
            };
            self.next = p.checked_add(1);
            let row = self
                .view
                .get_cf(CF_EVENT_LOGS, &p.to_be_bytes())?
                .ok_or(StoreError::CorruptIndexRow { len: 0 })?;
            let log = self.decode_row(p, &row)?;
            // The streams match exactly what the filter names; a topic
            // position it leaves open (null) still needs the check.
            if self.filter.matches(&log.event) {
                return Ok(Some(log));
            }
        }
        Ok(None)
    }

    fn decode_row(&self, p: Position, row: &[u8]) -> Result<EventLog, StoreError> {
        let corrupt = || StoreError::CorruptIndexRow { len: row.len() };
        let block_hash = Hash(
            row.get(..32)
                .ok_or_else(corrupt)?
                .try_into()
                .map_err(|_| corrupt())?,
        );
        let tx_hash = Hash(
            row.get(32..64)
                .ok_or_else(corrupt)?
                .try_into()
                .map_err(|_| corrupt())?,
        );
        let event: Event =
            decode(row.get(64..).ok_or_else(corrupt)?, &self.limits).map_err(|_| corrupt())?;
        let (block_height, tx_index, event_index) = position_parts(p);
        Ok(EventLog {
            block_height,
            block_hash,
            tx_hash,
            tx_index,
            event_index,
            event,
        })
    }
}

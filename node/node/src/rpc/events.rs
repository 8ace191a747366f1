//! `get_events`: committed blocks scanned for matching events, in pages
//! bounded by an event count, the response budget and the blocks scanned.

use jsonrpsee::core::RpcResult;
use stele_client::api::{EventCursor, EventFilter, EventLog, EventPage, codes};

use super::errors::{err, internal, not_found};
use super::size::json_len;
use crate::store::{BlockReader, CommittedBlock};

/// One `get_events` call's scan.
pub(crate) struct EventScan<'a> {
    pub reader: BlockReader<'a>,
    pub filter: &'a EventFilter,
    /// Most events in the page (whole-block pages finish their last block).
    pub limit: usize,
    /// Last height of the range.
    pub to: u64,
    /// Most blocks scanned.
    pub blocks_max: u64,
    /// Bytes the page's events may take as JSON.
    pub budget: usize,
}

/// Where a block's scan stopped.
enum Stop {
    /// At the end of the block.
    End,
    /// Before the event at this position, which would have broken a bound.
    Before(EventCursor),
}

impl EventScan<'_> {
    fn block(&self, height: u64) -> RpcResult<CommittedBlock> {
        self.reader
            .committed(height)
            .map_err(internal)?
            .ok_or_else(|| not_found(format_args!("block at height {height}")))
    }

    /// Appends the matching events of `b` from `start` to `events` while
    /// `fits(events, bytes with the next one)` allows.
    fn collect(
        &self,
        b: &CommittedBlock,
        start: EventCursor,
        events: &mut Vec<EventLog>,
        bytes: &mut usize,
        fits: impl Fn(usize, usize) -> bool,
    ) -> Stop {
        let height = b.block.header.height;
        let block_hash = b.certificate.block_hash;
        for (tx_index, receipt) in b.receipts.iter().enumerate() {
            let tx_index = tx_index as u32;
            if tx_index < start.tx_index {
                continue;
            }
            for (event_index, event) in receipt.events.iter().enumerate() {
                let event_index = event_index as u32;
                if tx_index == start.tx_index && event_index < start.event_index {
                    continue;
                }
                if !self.filter.matches(event) {
                    continue;
                }
                let log = EventLog {
                    block_height: height,
                    block_hash,
                    tx_hash: receipt.tx_hash,
                    tx_index,
                    event_index,
                    event: event.clone(),
                };
                let after = bytes.saturating_add(json_len(&log) + 1);
                if !fits(events.len(), after) {
                    return Stop::Before(EventCursor {
                        height,
                        tx_index,
                        event_index,
                    });
                }
                *bytes = after;
                events.push(log);
            }
        }
        Stop::End
    }

    /// The page after a range ending at `last` was scanned whole; with
    /// `cursor` (the cursor form) it says where to go on as a cursor too.
    /// Pages of the form without one never carry `next`, so clients that
    /// predate it still read them.
    fn done(&self, events: Vec<EventLog>, last: u64, cursor: bool) -> EventPage {
        let more = last < self.to;
        EventPage {
            events,
            to_height: last,
            next_height: more.then_some(last + 1),
            next: (more && cursor).then_some(EventCursor::block_start(last + 1)),
        }
    }

    /// A page without a cursor: whole blocks from `from`, ending with the
    /// block in which `limit` events were reached, or before a block that
    /// would take the page over the budget. A first block that alone does
    /// not fit is refused: only a cursor can page inside it.
    pub(crate) fn block_page(&self, from: u64) -> RpcResult<EventPage> {
        let last = self.to.min(from.saturating_add(self.blocks_max - 1));
        let mut events = Vec::new();
        let mut bytes = 0usize;
        for height in from..=last {
            let b = self.block(height)?;
            let kept = events.len();
            let stop = self.collect(
                &b,
                EventCursor::block_start(height),
                &mut events,
                &mut bytes,
                |_, after| after <= self.budget,
            );
            if let Stop::Before(_) = stop {
                if height == from {
                    return Err(err(
                        codes::RESPONSE_TOO_LARGE,
                        format!(
                            "the events of block {height} matching the filter exceed this node's response budget of {} bytes; page through them with a cursor (get_events' fifth parameter, e.g. {{\"height\":{height},\"tx_index\":0,\"event_index\":0}})",
                            self.budget
                        ),
                    ));
                }
                events.truncate(kept);
                return Ok(EventPage {
                    events,
                    to_height: height - 1,
                    next_height: Some(height),
                    next: None,
                });
            }
            if events.len() >= self.limit {
                return Ok(self.done(events, height, false));
            }
        }
        Ok(self.done(events, last, false))
    }

    /// A page from `at`: exactly `limit` events or as many as the budget
    /// holds, wherever they end.
    pub(crate) fn cursor_page(&self, at: EventCursor) -> RpcResult<EventPage> {
        let last = self.to.min(at.height.saturating_add(self.blocks_max - 1));
        let mut events = Vec::new();
        let mut bytes = 0usize;
        for height in at.height..=last {
            let b = self.block(height)?;
            let start = if height == at.height {
                at
            } else {
                EventCursor::block_start(height)
            };
            let stop = self.collect(&b, start, &mut events, &mut bytes, |n, after| {
                n < self.limit && after <= self.budget
            });
            if let Stop::Before(next) = stop {
                if events.is_empty() {
                    // Unreachable at the minimum response limit (an event
                    // is ~33 KB as JSON), but never loop on it.
                    return Err(err(
                        codes::RESPONSE_TOO_LARGE,
                        format!(
                            "event {} of transaction {} in block {height} exceeds this node's response budget of {} bytes",
                            next.event_index, next.tx_index, self.budget
                        ),
                    ));
                }
                return Ok(EventPage {
                    events,
                    to_height: height,
                    next_height: Some(height),
                    next: Some(next),
                });
            }
        }
        Ok(self.done(events, last, true))
    }
}

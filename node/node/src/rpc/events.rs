//! `get_events`: the matching events of committed blocks, in pages bounded
//! by an event count, the response budget and the heights covered.
//!
//! The events come from a source, in chain order: a scan of the blocks'
//! receipts ([`BlockScan`]), or the event index when it covers the page's
//! heights and the filter names a contract or a topic
//! (`index::IndexedEvents`). The paging ([`EventPager`]) is the same for
//! both, so an index answer is the scan's answer, page for page.

use jsonrpsee::core::RpcResult;
use stele_client::api::{EventCursor, EventFilter, EventLog, EventPage, codes};
use stele_state::CommittedView;

use super::errors::{err, internal, not_found};
use super::size::json_len;
use crate::index::{IndexKind, IndexedEvents, coverage};
use crate::store::{BlockReader, CommittedBlock};

/// Matching events in chain order.
pub(crate) trait EventSource {
    /// The next matching event at height `last` at most (`last` may only
    /// shrink from one call to the next).
    fn next_event(&mut self, last: u64) -> RpcResult<Option<EventLog>>;
}

/// The events of a filter found by reading every block's receipts.
pub(crate) struct BlockScan<'a> {
    reader: &'a BlockReader<'a>,
    filter: &'a EventFilter,
    /// The next position to look at.
    next: EventCursor,
    /// The block at `next.height`, once read.
    block: Option<CommittedBlock>,
}

impl<'a> BlockScan<'a> {
    pub(crate) fn new(
        reader: &'a BlockReader<'a>,
        filter: &'a EventFilter,
        start: EventCursor,
    ) -> Self {
        BlockScan {
            reader,
            filter,
            next: start,
            block: None,
        }
    }
}

impl EventSource for BlockScan<'_> {
    fn next_event(&mut self, last: u64) -> RpcResult<Option<EventLog>> {
        while self.next.height <= last {
            let height = self.next.height;
            let b = match &self.block {
                Some(b) if b.block.header.height == height => b,
                _ => {
                    let b = self
                        .reader
                        .committed(height)
                        .map_err(internal)?
                        .ok_or_else(|| not_found(format_args!("block at height {height}")))?;
                    self.block.insert(b)
                }
            };
            let start = self.next;
            for (tx_index, receipt) in b.receipts.iter().enumerate().skip(start.tx_index as usize) {
                let tx_index = tx_index as u32;
                let from = if tx_index == start.tx_index {
                    start.event_index as usize
                } else {
                    0
                };
                for (event_index, event) in receipt.events.iter().enumerate().skip(from) {
                    if !self.filter.matches(event) {
                        continue;
                    }
                    let event_index = event_index as u32;
                    self.next = EventCursor {
                        height,
                        tx_index,
                        event_index: event_index + 1,
                    };
                    return Ok(Some(EventLog {
                        block_height: height,
                        block_hash: b.certificate.block_hash,
                        tx_hash: receipt.tx_hash,
                        tx_index,
                        event_index,
                        event: event.clone(),
                    }));
                }
            }
            self.next = EventCursor::block_start(height + 1);
            self.block = None;
        }
        Ok(None)
    }
}

impl EventSource for IndexedEvents<'_> {
    fn next_event(&mut self, last: u64) -> RpcResult<Option<EventLog>> {
        IndexedEvents::next_event(self, last).map_err(internal)
    }
}

/// The source for a page of `filter`'s events from `start` to height
/// `last`: the index when `view`'s snapshot says it covers those heights
/// and the filter names something it keeps, else a scan of the blocks.
pub(crate) fn source<'a>(
    reader: &'a BlockReader<'a>,
    view: Option<&'a CommittedView>,
    filter: &'a EventFilter,
    start: EventCursor,
    last: u64,
) -> RpcResult<Box<dyn EventSource + 'a>> {
    if let Some(view) = view {
        let covered = coverage(view, IndexKind::Events)
            .map_err(internal)?
            .is_some_and(|c| c.covers(start.height, last));
        if covered
            && let Some(indexed) =
                IndexedEvents::new(view, filter, start, last).map_err(internal)?
        {
            return Ok(Box::new(indexed));
        }
    }
    Ok(Box::new(BlockScan::new(reader, filter, start)))
}

/// One `get_events` call, its parameters checked.
#[derive(Debug, Clone)]
pub struct EventQuery {
    pub filter: EventFilter,
    /// First height of the range (at least 1).
    pub from: u64,
    /// Last height of the range (at most the view's version).
    pub to: u64,
    pub limit: usize,
    /// The cursor form's start (inside `from..=to`), or the whole-block
    /// form without one.
    pub cursor: Option<EventCursor>,
    /// Most heights a page covers (`rpc.events_blocks_max`).
    pub blocks_max: u64,
    /// Bytes the page's events may take as JSON.
    pub budget: usize,
}

/// A `get_events` page read through `reader` as the RPC reads it: from the
/// event index where it covers the page and `use_index` allows, else by
/// scanning the blocks. Public for benchmarks and tools.
pub fn event_page(
    reader: &BlockReader<'_>,
    q: &EventQuery,
    use_index: bool,
) -> RpcResult<EventPage> {
    let pager = EventPager {
        limit: q.limit,
        to: q.to,
        blocks_max: q.blocks_max,
        budget: q.budget,
    };
    let start = q.cursor.unwrap_or(EventCursor::block_start(q.from));
    let last = pager.last(start.height);
    let view = if use_index { reader.view() } else { None };
    let mut src = source(reader, view, &q.filter, start, last)?;
    match q.cursor {
        Some(at) => pager.cursor_page(&mut *src, at),
        None => pager.block_page(&mut *src, q.from),
    }
}

/// One `get_events` call's paging.
pub(crate) struct EventPager {
    /// Most events in the page (whole-block pages finish their last block).
    pub limit: usize,
    /// Last height of the range.
    pub to: u64,
    /// Most heights a page covers.
    pub blocks_max: u64,
    /// Bytes the page's events may take as JSON.
    pub budget: usize,
}

impl EventPager {
    /// The last height of a page starting at `from`.
    pub(crate) fn last(&self, from: u64) -> u64 {
        self.to.min(from.saturating_add(self.blocks_max - 1))
    }

    /// The page after a range ending at `last` was read whole; with
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
    pub(crate) fn block_page(&self, src: &mut dyn EventSource, from: u64) -> RpcResult<EventPage> {
        let mut last = self.last(from);
        let mut events: Vec<EventLog> = Vec::new();
        let mut bytes = 0usize;
        while let Some(log) = src.next_event(last)? {
            let height = log.block_height;
            let after = bytes.saturating_add(json_len(&log) + 1);
            if after > self.budget {
                if height == from {
                    return Err(err(
                        codes::RESPONSE_TOO_LARGE,
                        format!(
                            "the events of block {height} matching the filter exceed this node's response budget of {} bytes; page through them with a cursor (get_events' fifth parameter, e.g. {{\"height\":{height},\"tx_index\":0,\"event_index\":0}})",
                            self.budget
                        ),
                    ));
                }
                events.retain(|e| e.block_height < height);
                return Ok(EventPage {
                    events,
                    to_height: height - 1,
                    next_height: Some(height),
                    next: None,
                });
            }
            bytes = after;
            events.push(log);
            if events.len() >= self.limit {
                // Finish this block, then stop.
                last = height;
            }
        }
        Ok(self.done(events, last, false))
    }

    /// A page from `at`: exactly `limit` events or as many as the budget
    /// holds, wherever they end.
    pub(crate) fn cursor_page(
        &self,
        src: &mut dyn EventSource,
        at: EventCursor,
    ) -> RpcResult<EventPage> {
        let last = self.last(at.height);
        let mut events = Vec::new();
        let mut bytes = 0usize;
        while let Some(log) = src.next_event(last)? {
            let after = bytes.saturating_add(json_len(&log) + 1);
            if events.len() >= self.limit || after > self.budget {
                let height = log.block_height;
                if events.is_empty() {
                    // Unreachable at the minimum response limit (an event
                    // is ~33 KB as JSON), but never loop on it.
                    return Err(err(
                        codes::RESPONSE_TOO_LARGE,
                        format!(
                            "event {} of transaction {} in block {height} exceeds this node's response budget of {} bytes",
                            log.event_index, log.tx_index, self.budget
                        ),
                    ));
                }
                return Ok(EventPage {
                    events,
                    to_height: height,
                    next_height: Some(height),
                    next: Some(EventCursor {
                        height,
                        tx_index: log.tx_index,
                        event_index: log.event_index,
                    }),
                });
            }
            bytes = after;
            events.push(log);
        }
        Ok(self.done(events, last, true))
    }
}

#[cfg(test)]
mod tests;

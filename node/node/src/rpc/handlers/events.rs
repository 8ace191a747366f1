//! `get_events`: pages of the events of committed blocks, read on the read
//! pool from the event index where it covers them, else by a scan.

use jsonrpsee::core::RpcResult;
use stele_client::api::*;

use super::Handler;
use crate::rpc::errors::{err, invalid};
use crate::rpc::events::{EventQuery, event_page};
use crate::rpc::size::json_len;

impl Handler {
    /// `get_events`: a page of the events matching `filter` in a height range.
    pub(super) async fn events_page(
        &self,
        filter: EventFilter,
        from_height: u64,
        to_height: Option<u64>,
        limit: u32,
        cursor: Option<EventCursor>,
    ) -> RpcResult<EventPage> {
        async {
            let max = self.config.events_limit_max;
            if limit == 0 || limit > max {
                return Err(invalid(format!("limit must be 1 to {max}, got {limit}")));
            }
            if filter.topics.len() > 4 {
                return Err(invalid("an event has at most 4 topics"));
            }
            self.reach(to_height).await?;
            // One version for the whole scan, read through its snapshot
            // on the read pool: a commit never waits for a scan.
            let view = self.view()?;
            let latest = view.version();
            let to = to_height.unwrap_or(latest);
            if to > latest {
                return Err(err(
                    codes::HEIGHT_UNAVAILABLE,
                    format!("height {to} is above the committed height {latest}"),
                ));
            }
            let from = from_height.max(1);
            if from > to {
                return Err(invalid(format!(
                    "from_height {from_height} is above to_height {to}"
                )));
            }
            if let Some(c) = cursor
                && !(from..=to).contains(&c.height)
            {
                return Err(invalid(format!(
                    "cursor height {} is outside from_height..=to_height ({from}..={to})",
                    c.height
                )));
            }
            let blocks_max = self.config.events_blocks_max;
            let budget = self.budget().saturating_sub(json_len(&EventPage {
                events: Vec::new(),
                to_height: u64::MAX,
                next_height: Some(u64::MAX),
                next: Some(EventCursor {
                    height: u64::MAX,
                    tx_index: u32::MAX,
                    event_index: u32::MAX,
                }),
            }));
            let query = EventQuery {
                filter,
                from,
                to,
                limit: limit as usize,
                cursor,
                blocks_max,
                budget,
            };
            self.read_with(view, move |reader| event_page(&reader, &query, true))
                .await
        }
        .await
    }
}

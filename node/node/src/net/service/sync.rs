//! Block-sync request and response: asking a peer, and serving a peer's
//! requests a bounded number at a time within its sync budget.

use std::sync::Arc;
use std::time::Instant;

use quinn::{Connection, VarInt};
use stele_types::Address;
use tokio::sync::{Semaphore, oneshot};

use super::{InboundSync, NetError, Network, SyncResponder, lock};
use crate::net::frame::{Channel, ReadError, code, read_frame, write_frame};
use crate::net::metrics::DropReason;
use crate::net::rate::SyncBudget;

impl Network {
    /// Sends a block-sync request to `to` and waits for its response.
    pub async fn request(&self, to: &Address, request: &[u8]) -> Result<Vec<u8>, NetError> {
        let conn = self
            .peers()
            .get(to)
            .map(|p| p.conn.clone())
            .ok_or(NetError::NotConnected(*to))?;
        let peer = *to;
        let config = &self.inner.config;
        let fail = |reason: String| NetError::Request { peer, reason };
        let exchange = async {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| fail(e.to_string()))?;
            send.set_priority(Channel::Sync.priority()).ok();
            send.write_all(&[Channel::Sync as u8])
                .await
                .map_err(|e| fail(e.to_string()))?;
            write_frame(&mut send, request).await.map_err(fail)?;
            send.finish().map_err(|e| fail(e.to_string()))?;
            match read_frame(&mut recv, config.sync_response_bytes_max).await {
                Ok(response) => Ok(response),
                Err(ReadError::Oversized { len, max }) => {
                    self.inner.metrics.record_drop(DropReason::Oversized);
                    Err(fail(format!("response of {len} bytes over {max}")))
                }
                Err(ReadError::Finished) => Err(fail("peer closed the request".into())),
                Err(ReadError::Stream(e)) => Err(fail(e)),
            }
        };
        let response = tokio::time::timeout(config.sync_timeout, exchange)
            .await
            .map_err(|_| NetError::Timeout(peer))??;
        self.inner.metrics.inbound(Channel::Sync, response.len());
        Ok(response)
    }

    /// Waits until the peer's block-sync budget allows serving one more
    /// request, and takes it (module `rate`, [`SyncBudget`]); false if the
    /// connection closed meanwhile (a reconnection must not leave requests
    /// waiting to be served to nobody).
    async fn wait_for_sync_budget(&self, peer: Address, conn: &Connection) -> bool {
        let mut counted = false;
        loop {
            if conn.close_reason().is_some() {
                return false;
            }
            let now = Instant::now();
            let ready = lock(&self.inner.sync_budgets)
                .entry(peer)
                .or_insert_with(|| SyncBudget::new(&self.inner.config, now))
                .try_start(now);
            match ready {
                Ok(()) => return true,
                Err(wait) => {
                    if !counted {
                        counted = true;
                        self.inner.metrics.record_budget_wait(Channel::Sync);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Charges a block-sync response to the peer's budget.
    fn charge_sync_response(&self, peer: Address, bytes: usize) {
        let now = Instant::now();
        lock(&self.inner.sync_budgets)
            .entry(peer)
            .or_insert_with(|| SyncBudget::new(&self.inner.config, now))
            .charge(bytes, now);
    }

    /// Serves the peer's block-sync requests, a bounded number at a time.
    pub(super) async fn sync_server(self, peer: Address, conn: Connection) {
        let config = self.inner.config.clone();
        let permits = Arc::new(Semaphore::new(config.sync_streams_max as usize));
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                let _ = recv.stop(VarInt::from_u32(code::TOO_MANY_STREAMS));
                continue;
            };
            let net = self.clone();
            let config = config.clone();
            let conn = conn.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let mut first = [0u8; 1];
                if recv.read_exact(&mut first).await.is_err() {
                    return;
                }
                if first[0] != Channel::Sync as u8 {
                    let _ = recv.stop(VarInt::from_u32(code::BAD_CHANNEL));
                    return;
                }
                let request = match read_frame(&mut recv, config.sync_request_bytes_max).await {
                    Ok(r) => r,
                    Err(ReadError::Oversized { .. }) => {
                        net.inner.metrics.record_drop(DropReason::Oversized);
                        let _ = recv.stop(VarInt::from_u32(code::OVERSIZED_FRAME));
                        return;
                    }
                    Err(_) => return,
                };
                net.inner.metrics.inbound(Channel::Sync, request.len());
                // Over its budget the request waits here, holding its
                // stream slot: at most `sync_streams_max` wait, none is
                // served beyond the budget.
                if !net.wait_for_sync_budget(peer, &conn).await {
                    return;
                }
                let (tx, rx) = oneshot::channel();
                let event = InboundSync {
                    from: peer,
                    request,
                    respond: SyncResponder(tx),
                };
                if net.inner.sync_inbound.send(event).await.is_err() {
                    return;
                }
                let Ok(Ok(response)) = tokio::time::timeout(config.sync_timeout, rx).await else {
                    return;
                };
                net.charge_sync_response(peer, response.len());
                send.set_priority(Channel::Sync.priority()).ok();
                if write_frame(&mut send, &response).await.is_ok() {
                    net.inner.metrics.outbound(Channel::Sync, response.len());
                    let _ = send.finish();
                }
            });
        }
    }
}

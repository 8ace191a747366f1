//! What the RPC port answers while the node joins its chain by snapshot
//! (ADR 0012), before the RPC server can start (it serves the node's
//! state, which the join is still building): `GET /status` and the
//! `get_status` call give the join's progress, `GET /health` says the node
//! is not ready, and every other call is refused with
//! [`codes::JOINING`](stele_client::api::codes::JOINING). Bodies are
//! small JSON-RPC objects; anything else is refused. At most
//! [`CONNECTIONS_MAX`] connections are open at once.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use stele_client::api::{StatusInfo, codes};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::RpcListener;

/// A request body this server reads at most.
const BODY_BYTES_MAX: usize = 64 << 10;
/// Connections open at once; more wait in the listen queue.
const CONNECTIONS_MAX: usize = 64;

/// The listener, holding at most [`CONNECTIONS_MAX`] connections open:
/// the next is accepted once one closes.
struct Capped {
    inner: tokio::net::TcpListener,
    slots: Arc<tokio::sync::Semaphore>,
}

/// An accepted connection with its slot, given back when it closes.
struct Held {
    stream: tokio::net::TcpStream,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl axum::serve::Listener for Capped {
    type Io = Held;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Held, std::net::SocketAddr) {
        loop {
            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                // The semaphore is never closed.
                return std::future::pending().await;
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    return (
                        Held {
                            stream,
                            _slot: slot,
                        },
                        addr,
                    );
                }
                // Out of descriptors and the like: wait a little.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

impl tokio::io::AsyncRead for Held {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Held {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The server answering on the RPC port during the join; stop it before the
/// RPC server serves the port.
#[derive(Debug)]
pub struct JoiningServer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl JoiningServer {
    /// Stops answering and waits until the port is the RPC server's alone
    /// (connections that stay open are closed).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl RpcListener {
    /// Once `begin` is ready, answers on the bound port from `status`
    /// until stopped (see the module docs); until then connections wait in
    /// the listen queue. Must run inside the tokio runtime that will serve
    /// RPC.
    pub fn serve_joining(
        &self,
        begin: impl std::future::Future<Output = ()> + Send + 'static,
        status: impl Fn() -> StatusInfo + Send + Sync + 'static,
    ) -> std::io::Result<JoiningServer> {
        let listener = Capped {
            inner: tokio::net::TcpListener::from_std(self.listener.try_clone()?)?,
            slots: Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX)),
        };
        let status = Arc::new(status);
        let for_get = status.clone();
        let app = axum::Router::new()
            .route(
                "/status",
                get(move || {
                    let status = for_get.clone();
                    async move { json_response(&status()) }
                }),
            )
            .route(
                "/health",
                get(|| async {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "joining the chain by snapshot",
                    )
                }),
            )
            .route(
                "/",
                post(move |body: axum::body::Bytes| {
                    let status = status.clone();
                    async move { json_response(&call(&body, &*status)) }
                }),
            )
            .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX));
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            tokio::select! {
                () = begin => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
            let stop = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!(error = %e, "the RPC port's join status stopped");
            }
        });
        Ok(JoiningServer { stop, task })
    }
}

/// One JSON-RPC call (a batch is refused as a whole).
fn call(body: &[u8], status: &dyn Fn() -> StatusInfo) -> Value {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            return json!({
                "jsonrpc": "2.0",
                "id": null,
                "error": { "code": -32700, "message": "parse error" },
            });
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    match request.get("method").and_then(Value::as_str) {
        Some("get_status") => match serde_json::to_value(status()) {
            Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            Err(e) => json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": { "code": codes::INTERNAL, "message": e.to_string() },
            }),
        },
        _ => json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {
                "code": codes::JOINING,
                "message": "the node is joining its chain by snapshot; only get_status answers until it has (see GET /status)",
            },
        }),
    }
}

fn json_response(value: &impl serde::Serialize) -> axum::response::Response {
    match serde_json::to_string(value) {
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use stele_client::Client;
    use stele_client::api::{SnapshotSyncInfo, SyncPhase};

    use super::*;
    use crate::rpc::{RpcConfig, bind};

    #[tokio::test]
    async fn a_joining_node_answers_its_status_and_refuses_every_other_call() {
        let listener = bind(RpcConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..RpcConfig::default()
        })
        .unwrap();
        let addr = listener.local_addr().unwrap();
        let (go, begin) = tokio::sync::oneshot::channel::<()>();
        let status = || StatusInfo {
            chain_id: 7,
            syncing: true,
            phase: SyncPhase::Snapshot,
            snapshot: Some(SnapshotSyncInfo {
                phase: "fetching".into(),
                height: 160,
                chunks: 10,
                chunks_fetched: 4,
                ..Default::default()
            }),
            ..StatusInfo::default()
        };
        let server = listener
            .serve_joining(
                async move {
                    let _ = begin.await;
                },
                status,
            )
            .unwrap();
        let client = Client::connect(&format!("http://{addr}")).await.unwrap();
        // Not before `begin`: the call waits in the listen queue.
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(200), client.get_status()).await;
        assert!(early.is_err(), "answered before the join began");
        go.send(()).unwrap();
        let got = client.get_status().await.unwrap();
        assert_eq!(got, status());
        let refused = client
            .get_account(stele_types::Address([1; 20]))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Some(codes::JOINING), "{refused}");
        let health = http_get(addr, "/health").await;
        assert!(health.starts_with("HTTP/1.1 503"), "{health}");
        let plain = http_get(addr, "/status").await;
        assert!(plain.contains("\"chunks_fetched\":4"), "{plain}");
        // Idle connections hold every slot: the next waits until one goes.
        drop(client);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut idle = Vec::new();
        for _ in 0..CONNECTIONS_MAX {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let waiting = tokio::spawn(http_get(addr, "/status"));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !waiting.is_finished(),
            "a connection past the cap was served"
        );
        drop(idle.remove(0));
        let late = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("served once a slot freed")
            .unwrap();
        assert!(late.contains("\"chain_id\":7"), "{late}");
        drop(idle);
        server.stop().await;
    }

    /// A bare HTTP/1.1 GET; the response as text.
    async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }
}

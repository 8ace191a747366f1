//! The listener: accepts TCP connections (bounded), runs every HTTP request
//! through the per-IP rate limiter first, answers `GET /health` and
//! `GET /status` (and `GET /explorer/`, when on), applies CORS, and hands the rest to jsonrpsee (JSON-RPC
//! over HTTP, or a WebSocket upgrade).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{self, HeaderValue, Method, StatusCode, header};
use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;
use jsonrpsee::server::{
    BatchRequestConfig, HttpBody, Methods, PingConfig, Server, ServerConfig, ServerHandle,
    serve_with_graceful_shutdown, stop_channel,
};
use stele_client::api::SteleApiServer;
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::Service;

use super::call_limit::{CallLimitLayer, ClientIp, CostModel};
use super::config::{RpcConfig, RpcConfigError};
use super::conn::{Activity, Admitted, ConnLimits, EvictPolicy, Refusal, Watched};
use super::handlers::{Handler, Pools};
use super::metrics::{CallCountLayer, RpcMetrics};
use super::oversize::{OVERSIZE_LOG_INTERVAL_MS, OversizeLog};
use super::pool::ExecPool;
use super::proxy::TrustedProxies;
use super::proxy_protocol::{self, ProxyHeader};
use super::rate::{RateLimiter, Throttled};
use super::{NodeStatus, RpcContext};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type HttpResponse = http::Response<HttpBody>;

/// Why the RPC server did not start.
#[derive(Debug, Error)]
pub enum RpcError {
    #[error(transparent)]
    Config(#[from] RpcConfigError),
    #[error(
        "cannot listen for JSON-RPC on {addr}: {source} (is another node using it? change [rpc] listen in config.toml)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the execution threads: {0}")]
    Threads(std::io::Error),
}

/// Stack of the block-read threads (decoding only, no contract code).
const READ_THREAD_STACK_BYTES: usize = 4 << 20;
/// Stack of an admission thread (decoding and checking a transaction).
const ADMIT_THREAD_STACK_BYTES: usize = 2 << 20;

/// A running RPC server.
#[derive(Debug)]
pub struct RpcServer {
    local_addr: SocketAddr,
    handle: ServerHandle,
    metrics: Arc<RpcMetrics>,
    accept_done: watch::Receiver<bool>,
}

impl RpcServer {
    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn metrics(&self) -> Arc<RpcMetrics> {
        self.metrics.clone()
    }

    /// Stops accepting connections; open requests finish, connections close.
    pub fn stop(&self) {
        // Already stopped is fine.
        let _ = self.handle.stop();
    }

    /// Resolves once the server has stopped and every connection is closed.
    pub async fn stopped(self) {
        let mut done = self.accept_done;
        // An error means the loop is gone, which is what we wait for.
        let _ = done.wait_for(|d| *d).await;
        self.handle.stopped().await;
    }
}

/// What every request needs before it reaches jsonrpsee.
struct Front {
    limiter: Arc<RateLimiter>,
    metrics: Arc<RpcMetrics>,
    cors_any: bool,
    cors_origins: Vec<String>,
    /// Serve the block explorer at `/explorer/`.
    explorer: bool,
    status: Arc<dyn NodeStatus>,
    /// Peers `/health` requires.
    health_peers_min: u64,
    health_lag_blocks_max: u64,
    health_silence_ms_max: u64,
    /// Refusals for size, logged at most once per interval.
    oversize: Arc<OversizeLog>,
    body_bytes_max: u32,
    /// Proxies whose `X-Forwarded-For` names the client (`proxy`).
    proxies: TrustedProxies,
    /// Whether a refused PROXY header was logged at WARN yet (the first
    /// is: it usually means the balancer does not send one).
    proxy_header_warned: AtomicBool,
}

/// Starts the server on `config.listen` ([`bind`], then [`RpcListener::serve`]).
pub async fn start(config: RpcConfig, ctx: RpcContext) -> Result<RpcServer, RpcError> {
    bind(config)?.serve(ctx).await
}

/// The server's port, bound and not served yet: a node binds it before it
/// starts anything else (see `home::start_home`).
#[derive(Debug)]
pub struct RpcListener {
    config: RpcConfig,
    pub(super) listener: std::net::TcpListener,
    metrics: Arc<RpcMetrics>,
}

/// Checks `config` and binds `config.listen`; needs no runtime.
pub fn bind(config: RpcConfig) -> Result<RpcListener, RpcError> {
    config.validate()?;
    let listener = crate::listen::bind_tcp(config.listen).map_err(|source| RpcError::Bind {
        addr: config.listen,
        source,
    })?;
    Ok(RpcListener {
        config,
        listener,
        metrics: Arc::new(RpcMetrics::new()),
    })
}

impl RpcListener {
    /// The bound address (the port the OS chose for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The counters the server will keep, to export before it serves
    /// (`NodeMetrics::export_rpc`).
    pub fn metrics(&self) -> Arc<RpcMetrics> {
        self.metrics.clone()
    }

    /// Serves the bound port. Everything the server does (accepting,
    /// connections, calls, its timers) runs on the runtime this is awaited
    /// on; views, simulations and block reads run on the server's own
    /// bounded thread pools.
    pub async fn serve(self, ctx: RpcContext) -> Result<RpcServer, RpcError> {
        serve(self.config, self.listener, self.metrics, ctx).await
    }
}

async fn serve(
    config: RpcConfig,
    listener: std::net::TcpListener,
    metrics: Arc<RpcMetrics>,
    ctx: RpcContext,
) -> Result<RpcServer, RpcError> {
    let bind_error = |source| RpcError::Bind {
        addr: config.listen,
        source,
    };
    let listener = TcpListener::from_std(listener).map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let pool = ExecPool::new(
        config.exec_threads,
        config.exec_queue_max,
        stele_vm::EXEC_THREAD_STACK_BYTES,
    )
    .map_err(RpcError::Threads)?;
    let reads = ExecPool::new(
        config.read_threads,
        config.read_queue_max,
        READ_THREAD_STACK_BYTES,
    )
    .map_err(RpcError::Threads)?;
    // Admission is light work (no contract runs): the default stack.
    let admits = ExecPool::new(
        config.admit_threads,
        config.admit_queue_max,
        ADMIT_THREAD_STACK_BYTES,
    )
    .map_err(RpcError::Threads)?;
    let limiter = Arc::new(RateLimiter::new(
        config.rate_per_ip_per_s,
        config.rate_burst,
        config.rate_ips_max,
    ));
    let read_limiter = Arc::new(RateLimiter::new(
        config.read_bytes_per_ip_per_s,
        config.read_bytes_burst,
        config.rate_ips_max,
    ));
    let oversize = Arc::new(OversizeLog::new(
        config.body_bytes_max,
        Duration::from_millis(OVERSIZE_LOG_INTERVAL_MS),
    ));
    let front = Arc::new(Front {
        limiter: limiter.clone(),
        metrics: metrics.clone(),
        cors_any: config.cors_origins.iter().any(|o| o == "*"),
        cors_origins: config.cors_origins.clone(),
        explorer: config.explorer,
        status: ctx.status.clone(),
        health_peers_min: health_peers_min(ctx.validators.len()),
        health_lag_blocks_max: config.health_lag_blocks_max,
        health_silence_ms_max: config.health_silence_ms_max,
        oversize: oversize.clone(),
        body_bytes_max: config.body_bytes_max,
        proxies: TrustedProxies::new(&config.trusted_proxies),
        proxy_header_warned: AtomicBool::new(false),
    });
    let latest = Arc::new(AtomicU64::new(
        ctx.state
            .read()
            .ok()
            .and_then(|s| s.latest_version())
            .unwrap_or(0),
    ));
    let costs = Arc::new(CostModel {
        latest: latest.clone(),
        events_blocks_max: config.events_blocks_max,
        cost_max: config.rate_burst,
    });
    let mut commits = ctx.commits.subscribe();
    let handler = Handler::new(
        config.clone(),
        ctx,
        metrics.clone(),
        Pools {
            exec: pool,
            reads,
            admits,
        },
        limiter.clone(),
    );
    let module = handler.into_rpc();
    #[cfg(test)]
    let module = test_hooks::with_hooks(module);
    let methods: Methods = module.into();

    let batch = match config.batch_max {
        0 => BatchRequestConfig::Disabled,
        n => BatchRequestConfig::Limit(n),
    };
    let server_config = ServerConfig::builder()
        .max_request_body_size(config.body_bytes_max)
        .max_response_body_size(config.response_bytes_max)
        // Our own admission (`conn`) enforces `connections_max`. An evicted
        // connection gives its slot to the newcomer at once but takes a
        // moment to end inside jsonrpsee, so jsonrpsee's own count (a
        // backstop, answering 429) needs room for those too.
        .max_connections(config.connections_max.saturating_mul(2))
        .max_subscriptions_per_connection(config.subscriptions_per_connection_max)
        .set_message_buffer_capacity(config.ws_buffer_messages_max)
        .set_batch_request_config(batch)
        .enable_ws_ping(
            PingConfig::new()
                .ping_interval(Duration::from_millis(config.ws_ping_interval_ms))
                .inactive_limit(Duration::from_millis(config.idle_timeout_ms))
                .max_failures(1),
        )
        .build();
    let call_limit = CallLimitLayer {
        limiter,
        metrics: metrics.clone(),
        costs,
    };
    let builder = Server::builder()
        .set_config(server_config)
        .set_rpc_middleware(
            RpcServiceBuilder::new()
                .layer(call_limit)
                .layer(CallCountLayer(metrics.clone())),
        )
        .to_service_builder();
    let (stop_handle, handle) = stop_channel();
    let (done_tx, accept_done) = watch::channel(false);
    // The latest height, for pricing `get_events` calls without a lock.
    let stopped = stop_handle.clone().shutdown();
    tokio::spawn(async move {
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                b = commits.recv() => match b {
                    Ok(b) => {
                        latest.fetch_max(b.block.header.height, Ordering::Relaxed);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = &mut stopped => return,
            }
        }
    });
    // The count of refusals for size, written once their interval is over.
    let stopped = stop_handle.clone().shutdown();
    tokio::spawn(async move {
        tokio::pin!(stopped);
        let mut tick = tokio::time::interval(Duration::from_millis(OVERSIZE_LOG_INTERVAL_MS / 4));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Some(line) = oversize.flush(Instant::now()) {
                        tracing::warn!("{line}");
                    }
                }
                _ = &mut stopped => return,
            }
        }
    });
    let connections = Arc::new(ConnLimits::new(
        config.connections_max,
        config.connections_per_ip_max,
        EvictPolicy::new(Duration::from_millis(config.ws_ping_interval_ms)),
    ));
    let header_timeout = Duration::from_millis(config.request_header_timeout_ms);
    let idle_timeout = Duration::from_millis(config.idle_timeout_ms);
    let send_buffer_bytes = config.send_buffer_bytes;
    let proxy_protocol = config.proxy_protocol;

    tokio::spawn(async move {
        loop {
            let (socket, remote) = tokio::select! {
                res = listener.accept() => match res {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::debug!(error = %e, "rpc: accept failed");
                        continue;
                    }
                },
                _ = stop_handle.clone().shutdown() => break,
            };
            // A trusted proxy carries many clients: the per-address cap and
            // read budget would count them as one.
            let from_proxy = front.proxies.contains(remote.ip());
            let slot = match connections.admit(remote.ip(), from_proxy) {
                Ok(Admitted { slot, evicted }) => {
                    if let Some(why) = evicted {
                        front.metrics.evicted(why);
                        tracing::debug!(%remote, reason = why.label(), "rpc: closed a connection to admit a new one");
                    }
                    slot
                }
                Err(refusal) => {
                    let counter = match refusal {
                        Refusal::PerIp => &front.metrics.connections_refused_per_ip,
                        Refusal::Full => &front.metrics.connections_refused,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%remote, ?refusal, "rpc: connection refused");
                    // Best effort and never waited for: a fresh socket's
                    // send buffer is empty, so the answer fits.
                    let _ = socket.try_write(refusal.response());
                    drop(socket);
                    continue;
                }
            };
            // Replies and notifications are small writes: without this,
            // Nagle holds each one until the client's delayed ACK of the
            // previous (up to ~40 ms on Linux), which dominated commit
            // latency at low load.
            if let Err(e) = socket.set_nodelay(true) {
                tracing::debug!(error = %e, %remote, "rpc: cannot set TCP_NODELAY");
            }
            if send_buffer_bytes > 0
                && let Err(e) =
                    socket2::SockRef::from(&socket).set_send_buffer_size(send_buffer_bytes)
            {
                tracing::debug!(error = %e, %remote, "rpc: cannot set SO_SNDBUF");
            }
            let socket = Throttled::new(
                socket,
                remote.ip(),
                (!from_proxy).then(|| read_limiter.clone()),
            );
            // The slot lives in the socket: a WebSocket keeps it after the
            // HTTP connection below has handed the socket over.
            let (mut socket, activity) = Watched::new(socket, slot, header_timeout, idle_timeout);
            let front = front.clone();
            let builder = builder.clone();
            let methods = methods.clone();
            let stop = stop_handle.clone();
            let read_limiter = read_limiter.clone();
            let shutdown = stop_handle.clone().shutdown();
            tokio::spawn(async move {
                // Read here, not in the accept loop: a slow proxy delays
                // only its own connection (bounded by the header timeout).
                let remote = if from_proxy && proxy_protocol {
                    match front
                        .take_proxy_header(&mut socket, remote, &read_limiter)
                        .await
                    {
                        Some(client) => client,
                        None => return,
                    }
                } else {
                    remote
                };
                let svc = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let front = front.clone();
                    let activity = activity.clone();
                    let rpc = builder.clone().build(methods.clone(), stop.clone());
                    // A concrete error type (not a boxed trait object) keeps
                    // the connection future provably `Send` for every
                    // lifetime.
                    let fut: std::pin::Pin<
                        Box<dyn Future<Output = Result<HttpResponse, std::io::Error>> + Send>,
                    > = Box::pin(async move {
                        front
                            .serve(remote, req, rpc, &activity)
                            .await
                            .map_err(|e| std::io::Error::other(e.to_string()))
                    });
                    fut
                });
                if let Err(e) = serve_with_graceful_shutdown(socket, svc, shutdown).await {
                    tracing::debug!(error = %e, %remote, "rpc: connection ended");
                }
            });
        }
        let _ = done_tx.send(true);
    });
    Ok(RpcServer {
        local_addr,
        handle,
        metrics,
        accept_done,
    })
}

/// An admitted connection's socket.
type Socket = Watched<Throttled<TcpStream>>;

impl Front {
    /// Reads the PROXY protocol header a trusted proxy's connection starts
    /// with (`rpc.proxy_protocol`) and returns the client it names (the
    /// proxy itself for its own connections), whose address from now on
    /// counts for the per-address connection cap and read budget. `None`
    /// when the connection is to be closed: a malformed or missing header
    /// (counted), or a client with `connections_per_ip_max` open (429).
    async fn take_proxy_header(
        &self,
        socket: &mut Socket,
        proxy: SocketAddr,
        read_limiter: &Arc<RateLimiter>,
    ) -> Option<SocketAddr> {
        let client = match proxy_protocol::read_header(socket).await {
            Ok(ProxyHeader::Client(client)) => client,
            Ok(ProxyHeader::Proxy) => return Some(proxy),
            Err(e) => {
                self.metrics.proxy_header_refused(e.label());
                if self.proxy_header_warned.swap(true, Ordering::Relaxed) {
                    tracing::debug!(%proxy, error = %e, "rpc: closed a trusted proxy's connection");
                } else {
                    tracing::warn!(
                        %proxy,
                        error = %e,
                        "rpc: closed a trusted proxy's connection: rpc.proxy_protocol is on, so every connection from rpc.trusted_proxies must start with a PROXY header (HAProxy: send-proxy-v2); later ones are logged at debug and counted in rpc_proxy_headers_refused_total"
                    );
                }
                return None;
            }
        };
        // A chain of proxies: another trusted one carries many clients, so
        // its connection stays exempt as the proxy's own, and its requests'
        // `X-Forwarded-For` names them.
        if self.proxies.contains(client.ip()) {
            return Some(client);
        }
        if let Err(refusal) = socket.slot().rekey(client.ip()) {
            self.metrics
                .connections_refused_per_ip
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%proxy, %client, ?refusal, "rpc: connection refused");
            // Bounded by the header timeout: the watchdog closes the socket.
            let _ = socket.write_all(refusal.response()).await;
            return None;
        }
        socket
            .get_mut()
            .charge_to(client.ip(), read_limiter.clone());
        Some(client)
    }

    async fn serve<S>(
        &self,
        remote: SocketAddr,
        mut req: http::Request<hyper::body::Incoming>,
        mut rpc: S,
        activity: &Arc<Activity>,
    ) -> Result<HttpResponse, BoxError>
    where
        S: Service<http::Request<HttpBody>, Response = HttpResponse, Error = BoxError>,
    {
        let _in_flight = activity.request();
        self.metrics.http_requests.fetch_add(1, Ordering::Relaxed);
        // The client behind a trusted proxy, else the connection's peer.
        let remote = SocketAddr::new(
            self.proxies.client_of(remote.ip(), req.headers()),
            remote.port(),
        );
        if !self.limiter.allow(remote.ip(), Instant::now()) {
            self.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Ok(plain(
                StatusCode::TOO_MANY_REQUESTS,
                "rate limit exceeded for this address",
            ));
        }
        let origin = req.headers().get(header::ORIGIN).cloned();
        let allow_origin = origin.as_ref().and_then(|o| self.cors_allow(o));
        let mut response = match (req.method(), req.uri().path()) {
            (&Method::GET, "/health") => match self.unready() {
                Some(why) => plain(StatusCode::SERVICE_UNAVAILABLE, why),
                None => plain(StatusCode::OK, "ok"),
            },
            (&Method::GET, "/status") => {
                let body = serde_json::to_string(&self.status.status())
                    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
                let mut r = plain(StatusCode::OK, body);
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r
            }
            (&Method::GET, path) if self.explorer && super::explorer::is_explorer(path) => {
                super::explorer::serve(path)
            }
            (&Method::OPTIONS, _) => {
                let mut r = plain(StatusCode::NO_CONTENT, "");
                if allow_origin.is_some() {
                    let h = r.headers_mut();
                    h.insert(
                        header::ACCESS_CONTROL_ALLOW_METHODS,
                        HeaderValue::from_static("POST, GET, OPTIONS"),
                    );
                    h.insert(
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        HeaderValue::from_static("content-type"),
                    );
                    h.insert(
                        header::ACCESS_CONTROL_MAX_AGE,
                        HeaderValue::from_static("600"),
                    );
                }
                r
            }
            _ => {
                let upgrade = jsonrpsee::server::ws::is_upgrade_request(&req);
                // Every call takes its cost in tokens; an HTTP request's
                // token at the door pays one of them.
                req.extensions_mut().insert(ClientIp {
                    ip: remote.ip(),
                    prepaid: u32::from(!upgrade),
                });
                // A WebSocket's calls and subscriptions report to it.
                req.extensions_mut().insert(activity.clone());
                let req = if upgrade || req.method() != Method::POST {
                    req.map(HttpBody::new)
                } else {
                    let _receiving = activity.receiving();
                    match self.read_body(remote, req).await {
                        Ok(req) => req,
                        Err(refused) => return Ok(refused),
                    }
                };
                // No `?`: the boxed error passes through unchanged.
                let r = match rpc.call(req).await {
                    Ok(r) => r,
                    Err(e) => return Err(e),
                };
                if upgrade && r.status() == StatusCode::SWITCHING_PROTOCOLS {
                    activity.upgraded();
                }
                r
            }
        };
        if let Some(value) = allow_origin {
            response
                .headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("origin"));
        }
        Ok(response)
    }

    /// Reads a POST body within `body_bytes_max` before jsonrpsee sees it,
    /// so that the refusals a client can cause at will are answered here
    /// without a log line each (jsonrpsee warns of every body that breaks
    /// off): an oversized body gets jsonrpsee's own 413, counted and
    /// logged at most once per interval ([`OversizeLog`]); a body that
    /// breaks off gets 400 and a debug line.
    async fn read_body(
        &self,
        remote: SocketAddr,
        req: http::Request<hyper::body::Incoming>,
    ) -> Result<http::Request<HttpBody>, HttpResponse> {
        use hyper::body::Body as _;
        let limit = self.body_bytes_max;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > u64::from(limit)) {
            return Err(self.too_large(remote));
        }
        let (parts, mut body) = req.into_parts();
        // Allocated as the bytes arrive, never from the declared length.
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => {
                    tracing::debug!(%remote, error = %e, "rpc: request body broke off");
                    return Err(plain(
                        StatusCode::BAD_REQUEST,
                        "the request body could not be read",
                    ));
                }
            };
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            if bytes.len() + data.len() > limit as usize {
                return Err(self.too_large(remote));
            }
            bytes.extend_from_slice(&data);
        }
        Ok(http::Request::from_parts(parts, HttpBody::from(bytes)))
    }

    /// jsonrpsee's answer to a body over the limit, counted and logged at
    /// most once per interval.
    fn too_large(&self, remote: SocketAddr) -> HttpResponse {
        self.metrics
            .oversized_requests
            .fetch_add(1, Ordering::Relaxed);
        if let Some(line) = self.oversize.refused(remote.ip(), Instant::now()) {
            tracing::warn!("{line}");
        }
        jsonrpsee::server::http::response::too_large(self.body_bytes_max)
    }

    /// Why the node should not take traffic now, if it should not: it is
    /// syncing, has too few peers to follow the chain, or is too far
    /// behind what its peers committed.
    fn unready(&self) -> Option<String> {
        let status = self.status.status();
        if status.syncing {
            return Some("syncing".to_string());
        }
        // A full node follows from any one peer.
        let peers_min = if status.full_node {
            1
        } else {
            self.health_peers_min
        };
        if status.peers_connected < peers_min {
            return Some(format!(
                "too few peers: {} connected, {peers_min} needed",
                status.peers_connected
            ));
        }
        if let Some(silent) = self.status.silent_for() {
            let max = self.health_silence_ms_max;
            if max > 0 && silent > Duration::from_millis(max) {
                return Some(format!(
                    "no certified block heard from peers for over {max} ms"
                ));
            }
        }
        let peers_at = self.status.peer_height()?;
        if peers_at.saturating_sub(status.height) > self.health_lag_blocks_max {
            return Some(format!(
                "behind: committed height {}, peers at {peers_at} (more than {} blocks)",
                status.height, self.health_lag_blocks_max
            ));
        }
        None
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`.
    fn cors_allow(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        if self.cors_any {
            return Some(HeaderValue::from_static("*"));
        }
        let o = origin.to_str().ok()?;
        self.cors_origins
            .iter()
            .any(|allowed| allowed == o)
            .then(|| origin.clone())
    }
}

/// Peers a node of a set of `validators` needs to count as ready: 2f (with
/// itself, enough validators by count for a quorum), at least one when it
/// is not alone; none for a single validator.
fn health_peers_min(validators: usize) -> u64 {
    if validators <= 1 {
        return 0;
    }
    let f = (validators - 1) / 3;
    (2 * f).max(1) as u64
}

fn plain(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    let mut r = http::Response::new(HttpBody::from(body.into()));
    *r.status_mut() = status;
    r
}

/// Methods only unit tests serve.
#[cfg(test)]
pub(crate) mod test_hooks {
    use jsonrpsee::RpcModule;
    use jsonrpsee::types::ErrorObjectOwned;

    /// `test_block_worker(ms)`: holds the RPC worker thread that runs it for
    /// `ms` milliseconds (at most 10 s), as a call that hogs the runtime
    /// would; answers `ms`.
    pub(crate) const BLOCK_WORKER: &str = "test_block_worker";

    pub(crate) fn with_hooks<C: Send + Sync + 'static>(mut module: RpcModule<C>) -> RpcModule<C> {
        let registered = module.register_method(BLOCK_WORKER, |params, _, _| {
            let ms: u64 = params.one()?;
            std::thread::sleep(std::time::Duration::from_millis(ms.min(10_000)));
            Ok::<u64, ErrorObjectOwned>(ms)
        });
        assert!(registered.is_ok(), "{BLOCK_WORKER} is registered once");
        module
    }
}

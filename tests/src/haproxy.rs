//! HAProxy in front of nodes' RPC ports, configured from the files
//! operators get (`docs/haproxy.cfg`, HTTP mode with `X-Forwarded-For`;
//! `docs/haproxy-tcp.cfg`, TCP mode with the PROXY protocol): the test
//! renders one for its nodes, runs `haproxy -db` as a child process
//! (killed on drop) and reads which servers are UP from its stats socket.
//!
//! HAProxy comes from Debian's `haproxy` package, which
//! `scripts/env.sh`'s `stele_install_deps` installs; without it,
//! [`Haproxy::start`] fails and says so.

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cluster::free_port;

/// `docs/haproxy.cfg`: JSON-RPC over HTTP round-robin, WebSockets by
/// client address, `X-Forwarded-For` added.
pub const HTTP_CFG: &str = include_str!("../../docs/haproxy.cfg");
/// `docs/haproxy-tcp.cfg`: TCP mode, `send-proxy-v2`.
pub const TCP_CFG: &str = include_str!("../../docs/haproxy-tcp.cfg");

/// Which shipped configuration to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `docs/haproxy.cfg`.
    Http,
    /// `docs/haproxy-tcp.cfg`.
    Tcp,
}

impl Mode {
    fn template(self) -> &'static str {
        match self {
            Mode::Http => HTTP_CFG,
            Mode::Tcp => TCP_CFG,
        }
    }

    /// The backend whose servers carry the health checks.
    pub fn checked_backend(self) -> &'static str {
        match self {
            Mode::Http => "stele_http",
            Mode::Tcp => "stele_tcp",
        }
    }
}

/// Fills in a shipped configuration's placeholders: `{{listen}}`,
/// `{{stats_socket}}` and `{{source}}`, and every line naming
/// `{{node_name}}` or `{{node_addr}}` once per node (named `node0`,
/// `node1`, ...). Comment lines are left as they are.
pub fn render(
    template: &str,
    listen: SocketAddr,
    stats_socket: &Path,
    source: IpAddr,
    nodes: &[SocketAddr],
) -> String {
    let mut out = String::with_capacity(template.len() + 128 * nodes.len());
    for line in template.lines() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let line = line
            .replace("{{listen}}", &listen.to_string())
            .replace("{{stats_socket}}", &stats_socket.display().to_string())
            .replace("{{source}}", &source.to_string());
        if line.contains("{{node_name}}") || line.contains("{{node_addr}}") {
            for (i, node) in nodes.iter().enumerate() {
                out.push_str(
                    &line
                        .replace("{{node_name}}", &server_name(i))
                        .replace("{{node_addr}}", &node.to_string()),
                );
                out.push('\n');
            }
        } else {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The server name [`render`] gives node `i`.
pub fn server_name(i: usize) -> String {
    format!("node{i}")
}

/// One server's line of `show stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStat {
    pub backend: String,
    pub server: String,
    /// `UP`, `DOWN`, `UP 1/2` (going down), `DOWN 1/2` (going up), `MAINT`,
    /// `no check`.
    pub status: String,
    /// Connections (sessions) sent to it so far (`stot`).
    pub sessions: u64,
}

/// The `haproxy` binary: on the `PATH`, or where Debian puts it (a
/// non-root `PATH` may lack `/usr/sbin`).
fn haproxy_bin() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let bin = dir.join("haproxy");
            if bin.is_file() {
                return Ok(bin);
            }
        }
    }
    for bin in ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"] {
        if Path::new(bin).is_file() {
            return Ok(bin.into());
        }
    }
    bail!(
        "haproxy is not installed: run `source scripts/env.sh && stele_install_deps` (it installs Debian's haproxy package; scripts/test does this), or `apt-get install haproxy`"
    )
}

/// A running HAProxy.
#[derive(Debug)]
pub struct Haproxy {
    child: Option<Child>,
    addr: SocketAddr,
    stats_socket: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Renders `mode`'s configuration for `nodes` (RPC addresses), with
    /// HAProxy connecting to them from `source` (a loopback address the
    /// nodes list in `rpc.trusted_proxies`), starts it on a free loopback
    /// port and waits until the frontend accepts connections.
    pub async fn start(mode: Mode, nodes: &[SocketAddr], source: IpAddr) -> Result<Haproxy> {
        let bin = haproxy_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("stele-haproxy-")
            .tempdir()?;
        let stats_socket = dir.path().join("stats.sock");
        let log = dir.path().join("haproxy.log");
        let cfg = dir.path().join("haproxy.cfg");
        let mut lb = Haproxy {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stats_socket,
            log,
            _dir: dir,
        };
        // Another process may take the port before HAProxy binds it: then
        // again with another.
        for attempt in 1.. {
            lb.addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            std::fs::write(
                &cfg,
                render(mode.template(), lb.addr, &lb.stats_socket, source, nodes),
            )?;
            let out = File::create(&lb.log)?;
            let child = Command::new(&bin)
                .arg("-f")
                .arg(&cfg)
                .arg("-db")
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out)
                .spawn()
                .with_context(|| format!("cannot run {}", bin.display()))?;
            lb.child = Some(child);
            match lb.wait_accepting().await {
                Ok(()) => break,
                Err(e) => {
                    let tail = lb.log_tail(20);
                    lb.kill();
                    let taken = tail.contains("cannot bind") || tail.contains("in use");
                    if !taken || attempt == 5 {
                        return Err(e.context(format!("haproxy log:\n{tail}")));
                    }
                }
            }
        }
        Ok(lb)
    }

    async fn wait_accepting(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!("haproxy exited at start-up ({status})");
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() && self.stats_socket.exists()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("haproxy does not accept on {} within 10 s", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The frontend's address, where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Every server's status, from `show stat` on the stats socket.
    pub async fn stats(&self) -> Result<Vec<ServerStat>> {
        let mut socket = tokio::net::UnixStream::connect(&self.stats_socket)
            .await
            .with_context(|| format!("stats socket {}", self.stats_socket.display()))?;
        socket.write_all(b"show stat\n").await?;
        let mut csv = String::new();
        tokio::time::timeout(Duration::from_secs(5), socket.read_to_string(&mut csv))
            .await
            .map_err(|_| anyhow!("no answer on the stats socket within 5 s"))??;
        parse_stat(&csv)
    }

    /// Server `node{i}` of `backend`.
    pub async fn server(&self, backend: &str, i: usize) -> Result<ServerStat> {
        let name = server_name(i);
        self.stats()
            .await?
            .into_iter()
            .find(|s| s.backend == backend && s.server == name)
            .with_context(|| format!("no server {backend}/{name}"))
    }

    /// The status of server `node{i}` in `backend`.
    pub async fn status(&self, backend: &str, i: usize) -> Result<String> {
        Ok(self.server(backend, i).await?.status)
    }

    /// Waits until server `node{i}` of `backend` has status `want` (`UP`,
    /// `DOWN`); how long that took.
    pub async fn wait_status(
        &self,
        backend: &str,
        i: usize,
        want: &str,
        timeout: Duration,
    ) -> Result<Duration> {
        let start = Instant::now();
        loop {
            let status = self.status(backend, i).await?;
            if status == want {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                bail!(
                    "{backend}/{} is {status}, not {want}, after {timeout:?}\nhaproxy log:\n{}",
                    server_name(i),
                    self.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last `lines` lines of HAProxy's output.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- haproxy log tail -----\n{}", self.log_tail(40));
        }
        self.kill();
    }
}

/// The servers of `show stat`'s CSV (its header line names the columns).
fn parse_stat(csv: &str) -> Result<Vec<ServerStat>> {
    let mut lines = csv.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .context("show stat: no header line")?;
    let column = |name: &str| {
        header
            .split(',')
            .position(|c| c == name)
            .with_context(|| format!("show stat: no {name} column"))
    };
    let (px, sv, st, stot) = (
        column("pxname")?,
        column("svname")?,
        column("status")?,
        column("stot")?,
    );
    let last = px.max(sv).max(st).max(stot);
    Ok(lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > last && f[sv] != "FRONTEND" && f[sv] != "BACKEND")
        .map(|f| ServerStat {
            backend: f[px].to_string(),
            server: f[sv].to_string(),
            status: f[st].to_string(),
            sessions: f[stot].parse().unwrap_or(0),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_every_placeholder_and_writes_a_server_line_per_node() {
        let nodes: Vec<SocketAddr> = vec![
            "127.0.0.1:9001".parse().unwrap(),
            "127.0.0.1:9002".parse().unwrap(),
        ];
        for template in [HTTP_CFG, TCP_CFG] {
            let cfg = render(
                template,
                "127.0.0.1:8000".parse().unwrap(),
                Path::new("/tmp/s.sock"),
                [127, 0, 0, 9].into(),
                &nodes,
            );
            let live: Vec<&str> = cfg
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect();
            assert!(live.iter().all(|l| !l.contains("{{")), "{cfg}");
            assert!(live.iter().any(|l| l.contains("bind 127.0.0.1:8000")));
            assert!(live.iter().any(|l| l.contains("source 127.0.0.9")));
            for (i, node) in nodes.iter().enumerate() {
                let line = format!("server node{i} {node} ");
                assert!(live.iter().any(|l| l.contains(&line)), "{cfg}");
            }
        }
    }

    #[test]
    fn show_stat_is_read_by_its_header() {
        let csv = "# pxname,svname,qcur,stot,status,weight\nstele_rpc,FRONTEND,,9,OPEN,\nstele_http,node0,0,4,UP,1\nstele_http,node1,0,5,DOWN 1/2,1\nstele_http,BACKEND,0,9,UP,2\n\n";
        let stats = parse_stat(csv).unwrap();
        assert_eq!(stats.len(), 2);
        assert_eq!(stats[1].server, "node1");
        assert_eq!(stats[1].status, "DOWN 1/2");
        assert_eq!(stats[1].sessions, 5);
    }
}

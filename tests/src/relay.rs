//! A UDP relay per directed link, so a test can cut, drop or delay the QUIC
//! traffic between two validators without root or extra tools.
//!
//! Validator `i` is told that validator `j` lives at the relay's front
//! address. The relay forwards what arrives there to `j`'s real address from
//! its own back socket, and what `j` answers to the last sender seen on the
//! front. QUIC does not care: peers authenticate by key, not by address.
//! The [`LinkRule`] applies to both directions of the traffic.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What a link does to each datagram.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkRule {
    /// Drop everything.
    pub cut: bool,
    /// Drop each datagram with this probability (0.0 to 1.0).
    pub loss: f64,
    /// Deliver each datagram this much later.
    pub delay: Duration,
}

impl LinkRule {
    /// Everything passes at once.
    pub const PASS: LinkRule = LinkRule {
        cut: false,
        loss: 0.0,
        delay: Duration::ZERO,
    };
    /// Nothing passes.
    pub const CUT: LinkRule = LinkRule {
        cut: true,
        loss: 0.0,
        delay: Duration::ZERO,
    };
}

/// Datagrams counted by a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    pub forwarded: u64,
    pub dropped: u64,
}

#[derive(Debug)]
struct Shared {
    rule: LinkRule,
    target: SocketAddr,
    stats: LinkStats,
    rng: u64,
}

/// Locks a relay's state; a panicked relay task cannot leave it
/// inconsistent (every update is a plain assignment).
fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// SplitMix64: enough randomness to drop datagrams, no dependency.
fn next_random(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// One directed link's relay. Dropping it stops the relay.
#[derive(Debug)]
pub struct Relay {
    front: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    tasks: Vec<JoinHandle<()>>,
}

enum Side {
    /// Towards the validator that dials (the front socket's last sender).
    Front(SocketAddr),
    /// Towards the validator being dialled (the target).
    Back(SocketAddr),
}

impl Relay {
    /// Starts a relay on loopback forwarding to `target`. Must run inside a
    /// tokio runtime.
    pub async fn start(target: SocketAddr, seed: u64) -> std::io::Result<Relay> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let front_addr = front.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared {
            rule: LinkRule::PASS,
            target,
            stats: LinkStats::default(),
            rng: seed | 1,
        }));
        let (delayed_tx, delayed_rx) = mpsc::unbounded_channel();
        let forward = tokio::spawn(forward_loop(
            front.clone(),
            back.clone(),
            shared.clone(),
            delayed_tx,
        ));
        let delayed = tokio::spawn(delayed_loop(front, back, delayed_rx));
        Ok(Relay {
            front: front_addr,
            shared,
            tasks: vec![forward, delayed],
        })
    }

    /// The address the dialling validator is given for its peer.
    pub fn front_addr(&self) -> SocketAddr {
        self.front
    }

    /// Where datagrams from the front go (the peer's real address).
    pub fn set_target(&self, target: SocketAddr) {
        lock(&self.shared).target = target;
    }

    pub fn set_rule(&self, rule: LinkRule) {
        lock(&self.shared).rule = rule;
    }

    pub fn rule(&self) -> LinkRule {
        lock(&self.shared).rule
    }

    pub fn stats(&self) -> LinkStats {
        lock(&self.shared).stats
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

type Delayed = (Instant, Side, Vec<u8>);

async fn forward_loop(
    front: Arc<UdpSocket>,
    back: Arc<UdpSocket>,
    shared: Arc<Mutex<Shared>>,
    delayed: mpsc::UnboundedSender<Delayed>,
) {
    let mut client: Option<SocketAddr> = None;
    let mut front_buf = vec![0u8; 65_536];
    let mut back_buf = vec![0u8; 65_536];
    loop {
        let (side, len) = tokio::select! {
            r = front.recv_from(&mut front_buf) => match r {
                Ok((len, from)) => {
                    client = Some(from);
                    let target = lock(&shared).target;
                    (Side::Back(target), len)
                }
                // ICMP errors surface as recv errors on some systems.
                Err(_) => continue,
            },
            r = back.recv_from(&mut back_buf) => match r {
                Ok((len, from)) => {
                    let target = lock(&shared).target;
                    match client {
                        Some(c) if from == target => (Side::Front(c), len),
                        _ => continue,
                    }
                }
                Err(_) => continue,
            },
        };
        let packet = match side {
            Side::Back(_) => &front_buf[..len],
            Side::Front(_) => &back_buf[..len],
        };
        let delay = {
            let mut s = lock(&shared);
            let rule = s.rule;
            let lost = rule.loss > 0.0 && next_random(&mut s.rng) < rule.loss;
            if rule.cut || lost {
                s.stats.dropped += 1;
                continue;
            }
            s.stats.forwarded += 1;
            rule.delay
        };
        if delay.is_zero() {
            send(&front, &back, &side, packet).await;
        } else {
            let _ = delayed.send((Instant::now() + delay, side, packet.to_vec()));
        }
    }
}

async fn send(front: &UdpSocket, back: &UdpSocket, side: &Side, packet: &[u8]) {
    // A full socket buffer or an unreachable peer loses the datagram, as a
    // network would.
    let _ = match side {
        Side::Front(to) => front.send_to(packet, to).await,
        Side::Back(to) => back.send_to(packet, to).await,
    };
}

async fn delayed_loop(
    front: Arc<UdpSocket>,
    back: Arc<UdpSocket>,
    mut rx: mpsc::UnboundedReceiver<Delayed>,
) {
    while let Some((at, side, packet)) = rx.recv().await {
        tokio::time::sleep_until(at).await;
        send(&front, &back, &side, &packet).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn echo_server() -> (SocketAddr, JoinHandle<()>) {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let _ = sock.send_to(&buf[..n], from).await;
            }
        });
        (addr, task)
    }

    async fn round_trip(client: &UdpSocket, to: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
        client.send_to(msg, to).await.unwrap();
        let mut buf = [0u8; 2048];
        match tokio::time::timeout(Duration::from_millis(300), client.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn forwards_both_ways_cuts_and_delays() {
        let (server, _task) = echo_server().await;
        let relay = Relay::start(server, 7).await.unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let front = relay.front_addr();
        assert_eq!(
            round_trip(&client, front, b"a").await.as_deref(),
            Some(&b"a"[..])
        );
        relay.set_rule(LinkRule::CUT);
        assert_eq!(round_trip(&client, front, b"b").await, None);
        assert!(relay.stats().dropped >= 1);
        relay.set_rule(LinkRule {
            delay: Duration::from_millis(100),
            ..LinkRule::PASS
        });
        let t = std::time::Instant::now();
        assert_eq!(
            round_trip(&client, front, b"c").await.as_deref(),
            Some(&b"c"[..])
        );
        // Both directions are delayed.
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
        relay.set_rule(LinkRule {
            loss: 1.0,
            ..LinkRule::PASS
        });
        assert_eq!(round_trip(&client, front, b"d").await, None);
    }

    #[test]
    fn loss_probability_is_roughly_honoured() {
        let mut s = 42;
        let hits = (0..10_000).filter(|_| next_random(&mut s) < 0.25).count();
        assert!((2_000..3_000).contains(&hits), "{hits}");
    }
}

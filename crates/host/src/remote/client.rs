//! The host's side of a remote plugin: connecting, the opening exchange, the relay.

use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Answer, Open, Remote, read_message, tls, write_message};
use crate::LoadError;

/// The longest an endpoint that keeps failing is put last, whatever `Remote::retry_after`
/// (unless that is longer).
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the host knows of a [`Remote`]'s endpoints: which failed lately, and where the
/// next connection starts. Shared by the clones of one `Remote`, so every plugin loaded
/// through it spreads over the same endpoints and skips the same dead ones.
///
/// The policy: each (re)connection starts at the next endpoint in turn (round robin)
/// and takes the first that answers, trying the live ones first; an endpoint that
/// could not be reached, or whose connection broke (not a plugin crash, not a call
/// past its deadline: the server answered those), is *down* and tried only after the
/// live ones, for `retry_after`, doubled at each failure in a row (at most
/// `MAX_BACKOFF`, or `retry_after` if longer); a connection made clears it. With every
/// endpoint down, each is still tried (the soonest due first): a restarted server
/// serves the next call.
#[derive(Debug, Default)]
pub(crate) struct Health {
    down: Mutex<HashMap<String, Down>>,
    next: AtomicUsize,
}

/// An endpoint that failed: how many times in a row, and until when it is tried last.
#[derive(Debug, Clone, Copy)]
struct Down {
    failures: u32,
    until: Instant,
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Down>> {
        self.down.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The order to try `endpoints` in for the next connection (see [`Health`]).
    fn order<'a>(&self, endpoints: &'a [String]) -> Vec<&'a String> {
        if endpoints.is_empty() {
            return Vec::new();
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % endpoints.len();
        let turn = endpoints[start..].iter().chain(&endpoints[..start]);
        let now = Instant::now();
        let down = self.lock();
        let due = |e: &String| down.get(e).filter(|d| d.until > now).map(|d| d.until);
        let (mut live, mut dead): (Vec<&String>, Vec<&String>) = turn.partition(|e| due(e).is_none());
        dead.sort_by_key(|e| due(e));
        live.append(&mut dead);
        live
    }

    /// `endpoint` failed: it is tried last for a while.
    pub(crate) fn failed(&self, endpoint: &str, retry_after: Duration) {
        let mut down = self.lock();
        let failures = down.get(endpoint).map_or(0, |d| d.failures).saturating_add(1);
        let wait = retry_after.saturating_mul(1 << (failures - 1).min(16)).min(MAX_BACKOFF.max(retry_after));
        let now = Instant::now();
        down.insert(endpoint.to_owned(), Down { failures, until: now.checked_add(wait).unwrap_or(now) });
    }

    /// `endpoint` answered.
    fn answered(&self, endpoint: &str) {
        let mut down = self.lock();
        if !down.is_empty() {
            down.remove(endpoint);
        }
    }
}

/// A connection made and its plugin started: what the relay takes over.
pub(crate) struct Dialed {
    /// The endpoint it reached.
    pub(crate) endpoint: String,
    tls: rustls::ClientConnection,
    tcp: TcpStream,
    /// The manifest the server's child loaded.
    pub(crate) manifest: Vec<u8>,
}

/// How to reach one remote plugin: shared by its connections over time.
pub(crate) struct Client {
    plugin: PathBuf,
    endpoints: Vec<String>,
    health: Arc<Health>,
    retry_after: Duration,
    config: Arc<rustls::ClientConfig>,
    open: Open,
    connect_timeout: std::time::Duration,
    /// The connection made while loading, for the first "process" to take.
    pending: Mutex<Option<Dialed>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("plugin", &self.plugin).field("endpoints", &self.endpoints).finish()
    }
}

impl Dialed {
    /// The TLS state and its socket, for the transport.
    pub(crate) fn into_parts(self) -> (rustls::ClientConnection, TcpStream) {
        (self.tls, self.tcp)
    }
}

impl Client {
    pub(crate) fn new(remote: &Remote, plugin: &Path, open: Open) -> Result<Client, LoadError> {
        let unavailable = |detail: String| LoadError::Unavailable { plugin: plugin.to_path_buf(), detail };
        if remote.endpoints.is_empty() {
            return Err(unavailable("no endpoint given (`Remote::endpoint`)".to_owned()));
        }
        if remote.servers.is_empty() {
            return Err(unavailable("no server key trusted (`Remote::trust_server`)".to_owned()));
        }
        let config = tls::client_config(&remote.identity, &remote.servers).map_err(|e| unavailable(e.to_string()))?;
        Ok(Client {
            plugin: plugin.to_path_buf(),
            endpoints: remote.endpoints.clone(),
            health: Arc::clone(&remote.health),
            retry_after: remote.retry_after,
            config,
            open,
            connect_timeout: remote.connect_timeout,
            pending: Mutex::new(None),
        })
    }

    /// Keeps a connection made while loading for the first call.
    pub(crate) fn keep(&self, dialed: Dialed) {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(dialed);
    }

    /// The connection to `endpoint` broke (the server or the network failed): the next
    /// connections try it last for a while (see [`Health`]).
    pub(crate) fn failed(&self, endpoint: &str) {
        self.health.failed(endpoint, self.retry_after);
    }

    /// Connects to the first endpoint that answers, in the order [`Health`] gives, and
    /// starts the plugin there with `config`. A server's refusal to load the plugin is
    /// its `LoadError`; otherwise [`LoadError::Overloaded`] if every server that
    /// answered was full, else [`LoadError::Unavailable`] with each endpoint's reason.
    pub(crate) fn dial(&self, config: &[u8]) -> Result<Dialed, LoadError> {
        self.dial_within(config, self.connect_timeout)
    }

    /// [`Client::dial`], each endpoint's connection and opening exchange given at
    /// most `limit` (and at most `Remote::connect_timeout`): a reconnection made for
    /// a call takes no more than what the call's deadline leaves.
    pub(crate) fn dial_within(&self, config: &[u8], limit: std::time::Duration) -> Result<Dialed, LoadError> {
        if let Some(dialed) = self.pending.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Ok(dialed);
        }
        let timeout = limit.min(self.connect_timeout);
        if timeout.is_zero() {
            return Err(LoadError::Unavailable {
                plugin: self.plugin.clone(),
                detail: "the call's deadline passed before a connection to the server could be made".to_owned(),
            });
        }
        let mut open = self.open.clone();
        open.config = config.to_vec();
        let request = open.encode();
        let mut reasons = Vec::new();
        let mut overloaded = false;
        for endpoint in self.health.order(&self.endpoints) {
            let answer = self.dial_one(endpoint, &request, timeout);
            match &answer {
                Ok(_) => self.health.answered(endpoint),
                Err(_) => self.failed(endpoint),
            }
            match answer {
                Ok(Ok(dialed)) => return Ok(dialed),
                Ok(Err((Answer::Refused, body))) => {
                    return Err(LoadError::from_wire(&body).unwrap_or_else(|| LoadError::Unavailable {
                        plugin: self.plugin.clone(),
                        detail: format!("{endpoint} refused the plugin with a malformed report"),
                    }));
                }
                Ok(Err((_, body))) => {
                    overloaded = true;
                    reasons.push(format!("{endpoint}: {}", String::from_utf8_lossy(&body)));
                }
                Err(reason) => reasons.push(format!("{endpoint}: {reason}")),
            }
        }
        let detail = reasons.join("; ");
        Err(if overloaded {
            LoadError::Overloaded { plugin: self.plugin.clone(), detail }
        } else {
            LoadError::Unavailable { plugin: self.plugin.clone(), detail }
        })
    }

    /// One endpoint: the connection and its plugin, the server's answer other than
    /// `Ready`, or why it could not be reached.
    #[allow(clippy::type_complexity)]
    fn dial_one(
        &self,
        endpoint: &str,
        request: &[u8],
        timeout: std::time::Duration,
    ) -> Result<Result<Dialed, (Answer, Vec<u8>)>, String> {
        let addresses = endpoint.to_socket_addrs().map_err(|e| format!("cannot resolve the address: {e}"))?;
        let mut last = "the address resolves to nothing".to_owned();
        let mut tcp = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = format!("cannot connect: {e}"),
            }
        }
        let mut tcp = tcp.ok_or(last)?;
        let io = |e: std::io::Error| e.to_string();
        tcp.set_read_timeout(Some(timeout)).map_err(io)?;
        tcp.set_write_timeout(Some(timeout)).map_err(io)?;
        let _ = tcp.set_nodelay(true);
        let mut conn = rustls::ClientConnection::new(Arc::clone(&self.config), tls::server_name())
            .map_err(|e| format!("cannot start TLS: {e}"))?;
        let answer = {
            let mut stream = rustls::Stream::new(&mut conn, &mut tcp);
            write_message(&mut stream, &[request])
                .and_then(|()| read_message(&mut stream))
                .map_err(|e| why_tls(&e, timeout))?
        };
        let (&status, body) = answer.split_first().ok_or("the server sent an empty answer")?;
        let body = body.to_vec();
        let _ = tcp.set_read_timeout(None);
        let _ = tcp.set_write_timeout(None);
        Ok(match status {
            s if s == Answer::Ready as u8 => {
                Ok(Dialed { endpoint: endpoint.to_owned(), tls: conn, tcp, manifest: body })
            }
            s if s == Answer::Refused as u8 => Err((Answer::Refused, body)),
            s if s == Answer::Overloaded as u8 => Err((Answer::Overloaded, body)),
            other => return Err(format!("the server answered with unknown status {other}")),
        })
    }
}

/// Says what a failed TLS exchange means for the user (`timeout`: what the exchange
/// was given).
fn why_tls(e: &std::io::Error, timeout: std::time::Duration) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(_)) => {
            "the server's key is not one this host trusts (`Remote::trust_server`); the connection was refused"
                .to_owned()
        }
        // What a server that does not accept the host's certificate sends (`tomada
        // serve` sends `AccessDenied`).
        Some(rustls::Error::AlertReceived(
            alert @ (rustls::AlertDescription::AccessDenied
            | rustls::AlertDescription::BadCertificate
            | rustls::AlertDescription::CertificateUnknown
            | rustls::AlertDescription::UnknownCA),
        )) => format!(
            "the server refused the connection ({alert:?}): it does not accept this host's key (`tomada serve --allow`)"
        ),
        Some(rustls::Error::AlertReceived(alert)) => format!(
            "the server refused the TLS handshake ({alert:?}): is the endpoint a `tomada serve` (TLS 1.3 with keys \
             on both sides), and this host's tomada of a version it speaks?"
        ),
        Some(other) => format!("TLS failed: {other}"),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the opening exchange".to_owned()
        }
        // (A socket's read or write timeout is `EAGAIN`, "resource temporarily
        // unavailable", on Linux.)
        None if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => format!(
            "the server took the connection but did not answer within {timeout:?} (`Remote::connect_timeout`, \
             or what the call's deadline left): is it stopped, or another service on that port?"
        ),
        None => format!("the opening exchange failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{Duration, Health};

    /// What a failed opening exchange is said to mean: a refusal of this host's key
    /// only for the alerts that say so (every `handshake_failure` was blamed on the
    /// key, sending the user to `tomada serve --allow`); a server that never answers
    /// is said to be one, not "resource temporarily unavailable".
    #[test]
    fn a_failed_opening_exchange_is_told_by_what_failed() {
        let tls = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let second = Duration::from_secs(1);
        let denied = super::why_tls(&tls(rustls::Error::AlertReceived(rustls::AlertDescription::AccessDenied)), second);
        assert!(denied.contains("does not accept this host's key"), "{denied}");
        let other =
            super::why_tls(&tls(rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure)), second);
        assert!(other.contains("is the endpoint a `tomada serve`") && !other.contains("--allow"), "{other}");
        let silent = super::why_tls(&std::io::Error::from(std::io::ErrorKind::WouldBlock), second);
        assert!(silent.contains("did not answer within 1s"), "{silent}");
    }

    #[test]
    fn connections_take_the_endpoints_in_turn_and_failed_ones_last() {
        let endpoints: Vec<String> = ["a", "b", "c"].iter().map(|s| (*s).to_owned()).collect();
        let health = Health::default();
        let firsts: Vec<&String> = (0..6).map(|_| health.order(&endpoints)[0]).collect();
        assert_eq!(firsts, ["a", "b", "c", "a", "b", "c"], "round robin");
        assert_eq!(health.order(&endpoints), ["a", "b", "c"], "each in turn after the first");
        health.failed("b", Duration::from_secs(3600));
        assert_eq!(health.order(&endpoints), ["c", "a", "b"], "b failed: last");
        assert_eq!(health.order(&endpoints), ["c", "a", "b"], "c's turn, b still last");
        // All failed: each is still tried, the soonest due first.
        health.failed("a", Duration::from_secs(7200));
        health.failed("c", Duration::from_secs(60));
        assert_eq!(health.order(&endpoints), ["c", "b", "a"]);
        // An endpoint that answers is live again; one whose retry time passed too.
        health.answered("a");
        health.failed("c", Duration::ZERO);
        assert_eq!(health.order(&endpoints), ["c", "a", "b"]);
    }
}

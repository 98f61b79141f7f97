//! The server's side: `tomada serve`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Answer, KeyError, KeyId, Open, read_message, relay, tls, write_message};
use crate::isolate::Isolation;
use crate::{Inspected, LoadError, Loader};

/// How long a client may take for the handshake and its request, all told.
const OPENING: Duration = Duration::from_secs(10);

/// How long after a call's deadline (the time left it carries, from when the relay
/// passed it on: later than the host's own by the time it took to arrive) the server
/// ends its process, if the host has not closed the connection by then.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);

/// How many connections may be in their opening (handshake and request) at once, by default.
const MAX_OPENING: usize = 64;

/// Why a server cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address cannot be listened on.
    #[error("cannot listen on `{address}`: {source}")]
    Listen {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// A key is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A plugin file was refused (inspection or trust policy).
    #[error(transparent)]
    Plugin(#[from] LoadError),
    /// Two plugin files have the same file name: a client could not say which it wants.
    #[error("two plugins are named `{name}`; serve files with distinct names")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// No client key is allowed: nobody could connect.
    #[error("no client key is allowed (`--allow KEY_ID`): nobody could connect")]
    NoClients,
}

/// One plugin file served.
struct Served {
    name: String,
    inspected: Inspected,
}

/// A server of plugin files (see the [module](super) docs): each client's connection
/// gets its own child process running the plugin it asks for.
pub struct Server {
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    plugins: Arc<Vec<Served>>,
    isolation: Isolation,
    max_clients: usize,
    clients: Arc<AtomicUsize>,
    max_opening: usize,
    opening: Arc<Mutex<Openings>>,
}

/// The connections in their opening (handshake and request), oldest first.
#[derive(Default)]
struct Openings {
    next: u64,
    live: std::collections::VecDeque<(u64, TcpStream)>,
}

/// A connection's place among those in their opening, given back when dropped.
struct Opened {
    id: u64,
    all: Arc<Mutex<Openings>>,
}

impl Drop for Opened {
    fn drop(&mut self) {
        let mut all = self.all.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.live.retain(|(id, _)| *id != self.id);
    }
}

impl Openings {
    /// Takes a place for `tcp`, closing the oldest connection still in its opening when
    /// `max` are: peers that hold a connection without finishing their handshake lose it
    /// to the next one, rather than keeping every newcomer out.
    fn open(all: &Arc<Mutex<Openings>>, tcp: &TcpStream, max: usize) -> std::io::Result<Opened> {
        let copy = tcp.try_clone()?;
        let mut openings = all.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while openings.live.len() >= max.max(1) {
            if let Some((_, oldest)) = openings.live.pop_front() {
                // Its thread's next read or write fails, and the thread ends.
                let _ = oldest.shutdown(std::net::Shutdown::Both);
            }
        }
        let id = openings.next;
        openings.next += 1;
        openings.live.push_back((id, copy));
        Ok(Opened { id, all: Arc::clone(all) })
    }
}

/// A place in a bounded count, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A place in `count` if it is below `max`.
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| Slot(Arc::clone(count)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("address", &self.listener.local_addr().ok()).finish_non_exhaustive()
    }
}

impl Server {
    /// Listens on `address` as `identity`, for clients presenting one of `clients`' keys,
    /// serving `plugins` (each inspected, and verified by `loader`'s trust policy, now),
    /// each client's in a child process started with `isolation`.
    ///
    /// # Errors
    /// [`ServeError`] for an address, key or plugin file that cannot be used.
    pub fn bind(
        address: &str,
        identity: &super::Identity,
        clients: &[KeyId],
        loader: &Loader,
        plugins: &[PathBuf],
        isolation: Isolation,
    ) -> Result<Server, ServeError> {
        if clients.is_empty() {
            return Err(ServeError::NoClients);
        }
        let config = tls::server_config(identity, clients)?;
        let mut served = Vec::new();
        for path in plugins {
            let inspected = loader.inspect(path)?;
            let name = file_name(path);
            if served.iter().any(|s: &Served| s.name == name) {
                return Err(ServeError::Duplicate { name });
            }
            served.push(Served { name, inspected });
        }
        let listener =
            TcpListener::bind(address).map_err(|source| ServeError::Listen { address: address.to_owned(), source })?;
        let mut isolation = isolation;
        isolation.socket_only = true;
        Ok(Server {
            listener,
            config,
            plugins: Arc::new(served),
            isolation,
            max_clients: 256,
            clients: Arc::default(),
            max_opening: MAX_OPENING,
            opening: Arc::default(),
        })
    }

    /// At most `clients` authenticated clients at once; past it a client is told
    /// [`Overloaded`](crate::CallError::Overloaded). Default 256. Connections still in
    /// their handshake do not count here (see [`max_opening`](Self::max_opening)).
    pub fn max_clients(mut self, clients: usize) -> Server {
        self.max_clients = clients;
        self
    }

    /// At most `opening` connections in their opening (TLS handshake and request) at
    /// once, each given 10 s all told; a connection accepted past it closes the oldest
    /// one still in its opening. Default 64. This bounds the threads and memory peers
    /// without an allowed key can hold, and keeps them from starving real clients: a
    /// client finishing its handshake before `opening` newer connections arrive is served.
    pub fn max_opening(mut self, opening: usize) -> Server {
        self.max_opening = opening;
        self
    }

    /// The address it listens on (with the port chosen, for port 0).
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the listener fails; each connection in a thread of its own. What
    /// happens to each connection (served, and how it ended; refused, and why) is
    /// logged through `tracing`, target `tomada::serve` (`tomada serve` prints it).
    ///
    /// # Errors
    /// The listener's error.
    pub fn run(&self) -> std::io::Result<()> {
        loop {
            let (tcp, peer) = match self.listener.accept() {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(e),
            };
            // Unauthenticated peers can only hold `max_opening` places: past them the
            // oldest connection still in its opening is closed.
            let opening = match Openings::open(&self.opening, &tcp, self.max_opening) {
                Ok(o) => o,
                Err(e) => {
                    log_refusal(|| tracing::warn!(target: "tomada::serve", %peer, error = %e, "connection refused"));
                    continue;
                }
            };
            let (config, plugins, isolation) =
                (Arc::clone(&self.config), Arc::clone(&self.plugins), self.isolation.clone());
            let (clients, max) = (Arc::clone(&self.clients), self.max_clients);
            let started = std::thread::Builder::new().name(format!("tomada-client-{peer}")).spawn(move || {
                let result = serve_one(tcp, config, &plugins, isolation, opening, &clients, max);
                match result {
                    Ok(how) => tracing::info!(target: "tomada::serve", %peer, "{how}"),
                    Err(why) => log_refusal(|| tracing::warn!(target: "tomada::serve", %peer, "refused: {why}")),
                }
            });
            if let Err(e) = started {
                tracing::error!(target: "tomada::serve", %peer, error = %e, "cannot start a thread for the connection");
            }
        }
    }
}

/// How many refused connections are logged in each [`REFUSAL_WINDOW`]; the rest are
/// counted, and the count logged once the next window opens: unauthenticated peers
/// cannot grow the server's log without bound.
const REFUSALS_LOGGED: u32 = 20;
const REFUSAL_WINDOW: Duration = Duration::from_secs(10);

/// The refusals' budget: the window's start, refusals logged in it, those not.
static REFUSALS: Mutex<Option<(Instant, u32, u64)>> = Mutex::new(None);

/// Whether a refusal at `now` is logged, and how many were not in the window that
/// just closed (to be said first). Hand-written: a counter per window is all it takes.
fn admit(state: &mut Option<(Instant, u32, u64)>, now: Instant) -> (bool, u64) {
    let (start, logged, dropped) = state.get_or_insert((now, 0, 0));
    let mut unsaid = 0;
    if now.saturating_duration_since(*start) >= REFUSAL_WINDOW {
        unsaid = std::mem::take(dropped);
        (*start, *logged) = (now, 0);
    }
    if *logged < REFUSALS_LOGGED {
        *logged += 1;
        (true, unsaid)
    } else {
        *dropped += 1;
        (false, unsaid)
    }
}

/// Logs a refused connection with `log`, within the budget (see [`admit`]). Also
/// used by the TLS verifier for the key a refused peer presented.
pub(crate) fn log_refusal(log: impl FnOnce()) {
    let (logged, unsaid) = admit(&mut REFUSALS.lock().unwrap_or_else(|p| p.into_inner()), Instant::now());
    if unsaid > 0 {
        tracing::warn!(
            target: "tomada::serve",
            "{unsaid} more refused connections were not logged (at most {REFUSALS_LOGGED} are, every {REFUSAL_WINDOW:?})"
        );
    }
    if logged {
        log();
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// A connection in its opening: each read and write may take only what is left of the
/// opening's one deadline, so a peer trickling bytes cannot hold its place longer than
/// a silent one.
struct Opening<'a> {
    tcp: &'a mut TcpStream,
    until: Instant,
}

impl Opening<'_> {
    /// Sets the timeouts to what is left, or fails once it is spent.
    fn left(&self) -> std::io::Result<()> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the opening took longer than {OPENING:?}"),
            ));
        }
        self.tcp.set_read_timeout(Some(left))?;
        self.tcp.set_write_timeout(Some(left))
    }
}

impl std::io::Read for Opening<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.left()?;
        self.tcp.read(buf)
    }
}

impl std::io::Write for Opening<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.left()?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

/// One client: the handshake, its request, its plugin's process, the relay.
/// `opening` is its place among connections in their opening, given back once its
/// request is read; only then does it take a place among `clients` (at most `max`).
#[allow(clippy::too_many_arguments)]
fn serve_one(
    mut tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    plugins: &[Served],
    isolation: Isolation,
    opening: Opened,
    clients: &Arc<AtomicUsize>,
    max: usize,
) -> Result<String, String> {
    let _ = tcp.set_nodelay(true);
    let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
    let mut io = Opening { tcp: &mut tcp, until: Instant::now() + OPENING };
    // The handshake first: a client whose key is not allowed ends here, before any
    // of its bytes is read as a request.
    while conn.is_handshaking() {
        conn.complete_io(&mut io).map_err(|e| format!("the handshake failed: {e}"))?;
    }
    let client = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| super::tls::key_id(c).map(|k| k.to_string()).unwrap_or_default())
        .unwrap_or_default();
    let mut stream = rustls::Stream::new(&mut conn, &mut io);
    let request = read_message(&mut stream).map_err(|e| format!("no request: {e}"))?;
    drop(opening);
    // Answers get time of their own (starting the plugin's process may take a while).
    stream.sock.until = Instant::now() + OPENING;
    // Only an authenticated client with its request read counts among the clients.
    let place = Slot::take(clients, max);
    let full = place.is_none();
    let answer =
        |stream: &mut rustls::Stream<'_, rustls::ServerConnection, Opening<'_>>, status: Answer, body: &[u8]| {
            write_message(stream, &[&[status as u8], body]).map_err(|e| format!("cannot answer: {e}"))
        };
    if full {
        answer(&mut stream, Answer::Overloaded, b"the server serves as many clients as it may")?;
        return Err("too many clients".to_owned());
    }
    let open = match Open::decode(&request) {
        Ok(o) => o,
        Err(why) => {
            let e = LoadError::Unavailable { plugin: PathBuf::new(), detail: why.clone() };
            answer(&mut stream, Answer::Refused, &e.to_wire())?;
            return Err(why);
        }
    };
    let refuse = |stream: &mut rustls::Stream<'_, rustls::ServerConnection, Opening<'_>>, e: LoadError| {
        let said = e.to_string();
        answer(stream, Answer::Refused, &e.to_wire()).and(Err(said))
    };
    let Some(served) = plugins.iter().find(|s| s.name == open.plugin) else {
        let names: Vec<&str> = plugins.iter().map(|s| s.name.as_str()).collect();
        return refuse(
            &mut stream,
            LoadError::Unavailable {
                plugin: PathBuf::from(&open.plugin),
                detail: format!("this server serves no plugin of that name (it serves: {})", names.join(", ")),
            },
        );
    };
    // The export for the client's contract, checked by name and ABI here; the client
    // checks the rest (layout) on the manifest it gets back, as it would on a file.
    let mut inspection = served.inspected.inspection.clone();
    let index = match inspection.export_for_abi(&open.contract, open.abi, open.export.as_deref()) {
        Ok(export) => export.manifest.index,
        Err(e) => return refuse(&mut stream, e),
    };
    if let Err(e) = inspection.choose(index) {
        return refuse(&mut stream, e);
    }
    let mut isolation = isolation.deadline(open.deadline);
    isolation.log_level = Some(open.log_level);
    let isolated = match crate::isolate::start(&inspection, &served.inspected.file, &open.config, &isolation) {
        Ok(i) => i,
        Err(e) => return refuse(&mut stream, e),
    };
    stream.sock.until = Instant::now() + OPENING;
    answer(&mut stream, Answer::Ready, &inspection.manifest_bytes)?;
    let Some((local, nudge)) = isolated.relay_ends() else {
        return Err("the plugin's process ended before its first call".to_owned());
    };
    let _ = tcp.set_read_timeout(None);
    let _ = tcp.set_write_timeout(None);
    let pid = isolated.pid().unwrap_or(0);
    let last = |timed_out: bool| {
        let status = isolated.relay_ended(timed_out);
        crate::isolate::frame::ended(status.and_then(|s| s.signal()), status.and_then(|s| s.code()), timed_out)
    };
    // The server enforces each call's deadline too, a margin after the host's own (which
    // usually comes first): a host gone without closing its connection leaves no call
    // stuck in a child.
    let deadlines = relay::Deadlines { default: open.deadline, margin: DEADLINE_MARGIN };
    let ended = relay::pump(rustls::Connection::Server(conn), tcp, local, deadlines, &*nudge, &last);
    drop(isolated);
    Ok(format!("client key {client}, plugin `{}` (pid {pid}): {ended}", open.plugin))
}

#[cfg(test)]
mod tests {
    /// At most `REFUSALS_LOGGED` refusals a window are logged; the rest are counted
    /// and said when the next window opens (a flood of 354 refusals was 354 lines).
    #[test]
    fn refusals_are_logged_within_a_budget_and_the_rest_counted() {
        use super::{REFUSAL_WINDOW, REFUSALS_LOGGED, admit};
        let start = std::time::Instant::now();
        let mut state = None;
        let logged = (0..100).filter(|_| admit(&mut state, start).0).count();
        assert_eq!(logged, REFUSALS_LOGGED as usize);
        let (first, unsaid) = admit(&mut state, start + REFUSAL_WINDOW);
        assert!(first, "a new window logs again");
        assert_eq!(unsaid, 100 - u64::from(REFUSALS_LOGGED), "what the last window did not log is said");
        assert_eq!(admit(&mut state, start + REFUSAL_WINDOW).1, 0, "said once");
    }
}

//! The server's side: `tomada serve`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{Answer, KeyError, KeyId, Open, read_message, relay, tls, write_message};
use crate::isolate::Isolation;
use crate::{Inspected, LoadError, Loader};

/// How long a client may take for the handshake and its request.
const OPENING: Duration = Duration::from_secs(10);

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
        Ok(Server { listener, config, plugins: Arc::new(served), isolation, max_clients: 256, clients: Arc::default() })
    }

    /// At most `clients` connections at once; past it a client is told
    /// [`Overloaded`](crate::CallError::Overloaded). Default 256.
    pub fn max_clients(mut self, clients: usize) -> Server {
        self.max_clients = clients;
        self
    }

    /// The address it listens on (with the port chosen, for port 0).
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the listener fails; each connection in a thread of its own.
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
            let (config, plugins, isolation) =
                (Arc::clone(&self.config), Arc::clone(&self.plugins), self.isolation.clone());
            let (clients, max) = (Arc::clone(&self.clients), self.max_clients);
            let started = std::thread::Builder::new().name(format!("tomada-client-{peer}")).spawn(move || {
                let n = clients.fetch_add(1, Ordering::SeqCst);
                let result = serve_one(tcp, config, &plugins, isolation, n >= max);
                clients.fetch_sub(1, Ordering::SeqCst);
                match result {
                    Ok(how) => eprintln!("tomada serve: {peer}: {how}"),
                    Err(why) => eprintln!("tomada serve: {peer}: refused: {why}"),
                }
            });
            if let Err(e) = started {
                eprintln!("tomada serve: {peer}: cannot start a thread: {e}");
            }
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// One client: the handshake, its request, its plugin's process, the relay.
fn serve_one(
    mut tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    plugins: &[Served],
    isolation: Isolation,
    full: bool,
) -> Result<String, String> {
    tcp.set_read_timeout(Some(OPENING)).map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(OPENING)).map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
    // The handshake first: a client whose key is not allowed ends here, before any
    // of its bytes is read as a request.
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| format!("the handshake failed: {e}"))?;
    }
    let client = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| super::tls::key_id(c).map(|k| k.to_string()).unwrap_or_default())
        .unwrap_or_default();
    let mut stream = rustls::Stream::new(&mut conn, &mut tcp);
    let request = read_message(&mut stream).map_err(|e| format!("no request: {e}"))?;
    let answer = |stream: &mut rustls::Stream<'_, rustls::ServerConnection, TcpStream>, status: Answer, body: &[u8]| {
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
    let refuse = |stream: &mut rustls::Stream<'_, rustls::ServerConnection, TcpStream>, e: LoadError| {
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
    answer(&mut stream, Answer::Ready, &inspection.manifest_bytes)?;
    let Some((local, nudge)) = isolated.relay_ends() else {
        return Err("the plugin's process ended before its first call".to_owned());
    };
    let _ = tcp.set_read_timeout(None);
    let _ = tcp.set_write_timeout(None);
    let pid = isolated.pid().unwrap_or(0);
    let ended = relay::pump(rustls::Connection::Server(conn), tcp, local, &*nudge);
    drop(isolated);
    Ok(format!("client key {client}, plugin `{}` (pid {pid}): {ended}", open.plugin))
}

//! Plugins on another machine: `tomada serve` runs them, a host calls them.
//!
//! A server ([`Server`], the `tomada serve` command) holds plugin files, inspected and
//! checked against its trust policy when it starts. A host loads one with
//! [`Mode::Remote`](crate::isolate::Mode::Remote): it connects (TLS 1.3 over TCP, both
//! sides authenticated by pinned Ed25519 keys, see [`Identity`] and [`KeyId`]), names
//! the plugin and its contract, and the server starts the plugin for this connection
//! in a child process of its own, isolated and sandboxed as the server's
//! [`Isolation`](crate::isolate::Isolation) says, exactly as `Mode::Isolated` would
//! on the server's machine. The server sends the manifest its child loaded; the host
//! checks it against its contract as it checks a file, and gets the same
//! [`Plugin<C>`](crate::Plugin): calls, objects, callbacks, async calls and log
//! records travel as the isolated frames do: the host's endpoint writes them straight
//! into TLS (a transport of its own, `transport.rs`), and a relay thread on the server
//! passes them on, unchanged, to its child's socket (`relay.rs`).
//!
//! Remote is explicit, never transparent: a call fails with
//! [`CallError::Unavailable`](crate::CallError::Unavailable) (no server reached: not
//! sent), [`CallError::Overloaded`](crate::CallError::Overloaded) (not sent), or
//! [`CallError::Disconnected`](crate::CallError::Disconnected) with `may_have_run`
//! (the connection broke after it was sent). A call past its deadline ends the
//! connection (the server then ends the plugin's process), as a hung isolated call
//! ends the process. The next call reconnects, to the first endpoint that answers.
//!
//! ```no_run
//! use pluginapi::Greeter;
//! use tomada_host::isolate::Mode;
//! use tomada_host::remote::{Identity, Remote};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let me = Identity::read("host.key")?;
//!     let remote = Remote::new(me)
//!         .endpoint("plugins.example:7100")
//!         .trust_server("3f0c…".parse()?) // the server's key id (`tomada tls-key`)
//!         .deadline(std::time::Duration::from_secs(2));
//!     let plugin = tomada_host::load_with::<dyn Greeter>("greeter_v1.so", &Mode::Remote(remote))?;
//!     println!("{}", plugin.greet("Mundo")?);
//!     Ok(())
//! }
//! ```

pub(crate) mod client;
mod relay;
mod server;
mod tls;
pub(crate) mod transport;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tomada::Contract;
use tomada::client::{RawClient, Target};

pub use server::{ServeError, Server};
pub use tls::{Identity, KeyId};

use crate::inspect::Export;
use crate::{Inspection, LoadError, Loader, Plugin};

/// For benches only: the TLS configurations a server and a client use, so a bare
/// `rustls` round trip can be measured on the same handshake and ciphers.
#[doc(hidden)]
pub mod __bench {
    use std::sync::Arc;

    use super::{Identity, KeyError, tls};

    /// (server, client) configurations pinning each other's key.
    ///
    /// # Errors
    /// As the configurations' builders.
    pub fn configs(
        server: &Identity,
        client: &Identity,
    ) -> Result<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>), KeyError> {
        Ok((tls::server_config(server, &[client.id()])?, tls::client_config(client, &[server.id()])?))
    }

    /// The server name a client asks for.
    pub fn server_name() -> rustls::pki_types::ServerName<'static> {
        tls::server_name()
    }
}

/// What went wrong with a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file cannot be read.
    #[error("cannot read key file `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not a private key (PKCS#8 PEM, as `tomada tls-key` writes it).
    #[error("not a usable private key (PKCS#8 PEM, as `tomada tls-key` writes): {reason}")]
    BadKey {
        /// Why.
        reason: String,
    },
    /// A key id is 64 hexadecimal digits (what `tomada tls-key` prints and writes to
    /// its `.pub`).
    #[error("`{text}` is not a key id: 64 hexadecimal digits, as `tomada tls-key` prints and writes to its `.pub`")]
    BadId {
        /// The text given.
        text: String,
    },
    /// No key could be made.
    #[error("cannot generate a key: {reason}")]
    Generate {
        /// Why.
        reason: String,
    },
}

/// How a host reaches a remote plugin: its endpoints, its own key, the servers' keys
/// it trusts, and its deadlines.
#[derive(Clone, Debug)]
pub struct Remote {
    pub(crate) endpoints: Vec<String>,
    pub(crate) identity: Identity,
    pub(crate) servers: Vec<KeyId>,
    pub(crate) deadline: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) crash_budget: (u32, Duration),
    /// Which endpoints failed lately, and where the next connection starts: shared by
    /// this `Remote`'s clones.
    pub(crate) health: Arc<client::Health>,
}

impl Remote {
    /// A host that authenticates as `identity`; add endpoints and trusted server keys.
    /// Defaults: a 30 s deadline per call, 5 s to connect and start the plugin, a
    /// failed endpoint tried last for 1 s (doubling while it keeps failing), and 3
    /// crashes a minute before quarantine.
    pub fn new(identity: Identity) -> Remote {
        Remote {
            endpoints: Vec::new(),
            identity,
            servers: Vec::new(),
            deadline: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retry_after: Duration::from_secs(1),
            crash_budget: (3, Duration::from_secs(60)),
            health: Arc::default(),
        }
    }

    /// A server's address (`host:port`). With several, connections spread over them
    /// and avoid the ones that failed:
    ///
    /// - each (re)connection starts at the next endpoint in turn (round robin, over
    ///   every plugin loaded through this `Remote` or its clones) and takes the first
    ///   that answers;
    /// - an endpoint that could not be reached, or whose connection broke, is tried
    ///   only after the others for [`Remote::retry_after`] (doubled at each failure in
    ///   a row, up to a minute); with every endpoint failing, each is tried all the
    ///   same, so a restarted server serves the next call;
    /// - a plugin's calls go over one connection, to one server, until it breaks: the
    ///   next call then reconnects (maybe elsewhere), to a fresh plugin instance. The
    ///   objects and callbacks of the old connection do not move: calling one fails
    ///   with [`CallError::Disconnected`](crate::CallError::Disconnected)
    ///   `{ may_have_run: false }` saying so (get a new one through the plugin).
    pub fn endpoint(mut self, address: impl Into<String>) -> Remote {
        self.endpoints.push(address.into());
        self
    }

    /// Trusts a server presenting this key (its id, from `tomada tls-key`); any other
    /// server fails the handshake.
    pub fn trust_server(mut self, key: KeyId) -> Remote {
        self.servers.push(key);
        self
    }

    /// The longest a call may take, sent with the connection to the server; past it
    /// the call fails with [`CallError::TimedOut`](crate::CallError::TimedOut) and the
    /// connection ends (the server ends the plugin's process).
    pub fn deadline(mut self, deadline: Duration) -> Remote {
        self.deadline = deadline;
        self
    }

    /// The longest connecting to one endpoint and starting the plugin there may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Remote {
        self.connect_timeout = timeout;
        self
    }

    /// How long an endpoint that failed is tried only after the others (doubled at
    /// each failure in a row, up to a minute or this if longer). Default 1 s.
    pub fn retry_after(mut self, wait: Duration) -> Remote {
        self.retry_after = wait;
        self
    }

    /// After `crashes` crashes of the plugin on the server within `window` (the
    /// server says so: a signal or an exit, as
    /// [`CallError::Crashed`](crate::CallError::Crashed)), it is quarantined as an
    /// isolated plugin is ([`Isolation::crash_budget`](crate::isolate::Isolation::crash_budget)):
    /// calls fail with [`CallError::Quarantined`](crate::CallError::Quarantined), no
    /// reconnection. Lost connections and calls past their deadline do not count (the
    /// network may be at fault). Default: 3 within a minute.
    pub fn crash_budget(mut self, crashes: u32, window: Duration) -> Remote {
        self.crash_budget = (crashes, window);
        self
    }
}

/// The version of the remote protocol: of the opening exchange below and of the frames
/// that follow it, one number (the isolated frames' protocol: a change to either is a
/// new version of both). The host sends it first; a server of another version refuses
/// the connection, naming both. (Version 1 was the opening alone, beside frames of
/// protocol 3.)
const VERSION: u32 = crate::isolate::PROTOCOL;
/// The largest opening message either side reads.
const MAX_OPEN: usize = 16 << 20;

/// What a host asks for when it connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Open {
    pub(crate) plugin: String,
    pub(crate) contract: String,
    pub(crate) abi: u32,
    pub(crate) export: Option<String>,
    pub(crate) config: Vec<u8>,
    pub(crate) log_level: u8,
    pub(crate) deadline: Duration,
}

/// The server's answer to an [`Open`]: a status and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Answer {
    /// The plugin runs: its manifest bytes follow.
    Ready = 0,
    /// The server refused or failed to load it: a `LoadError` in its wire form.
    Refused = 1,
    /// Too many clients: a message.
    Overloaded = 2,
}

impl Open {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let wire = (
            VERSION,
            &self.plugin,
            &self.contract,
            self.abi,
            &self.export,
            &self.config,
            self.log_level,
            self.deadline.as_millis() as u64,
        );
        postcard::to_allocvec(&wire).expect("encodable")
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Open, String> {
        // The version first, alone: what follows it is another version's to lay out.
        let (version, _): (u32, _) =
            postcard::take_from_bytes(bytes).map_err(|e| format!("a malformed request: {e}"))?;
        if version != VERSION {
            return Err(format!(
                "the host speaks version {version} of the remote protocol; this server speaks version {VERSION}: \
                 run the same tomada release on both sides"
            ));
        }
        type Wire = (u32, String, String, u32, Option<String>, Vec<u8>, u8, u64);
        let (_, plugin, contract, abi, export, config, log_level, deadline): Wire =
            postcard::from_bytes(bytes).map_err(|e| format!("a malformed request: {e}"))?;
        Ok(Open { plugin, contract, abi, export, config, log_level, deadline: Duration::from_millis(deadline) })
    }
}

/// Writes one message: its length (u32, little-endian), then it.
pub(crate) fn write_message(to: &mut impl Write, parts: &[&[u8]]) -> std::io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut bytes = Vec::with_capacity(4 + len);
    bytes.extend_from_slice(&(len as u32).to_le_bytes());
    for p in parts {
        bytes.extend_from_slice(p);
    }
    to.write_all(&bytes)?;
    to.flush()
}

/// Reads one message written by [`write_message`], of at most [`MAX_OPEN`] bytes.
pub(crate) fn read_message(from: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_OPEN {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("a message of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    from.read_exact(&mut body)?;
    Ok(body)
}

/// Loads the plugin the server calls `name` for contract `C` (see the module docs).
pub(crate) fn load<C: ?Sized + Contract>(
    loader: &Loader,
    name: &Path,
    remote: &Remote,
) -> Result<Plugin<C>, LoadError> {
    // The server serves its plugins by file name: a host that names the plugin by its
    // path (the call it makes in-process, `Mode` changed) asks for that file name.
    let served_as = name.file_name().map_or_else(|| name.to_string_lossy(), |n| n.to_string_lossy());
    let open = Open {
        plugin: served_as.into_owned(),
        contract: C::NAME.to_owned(),
        abi: C::ABI,
        export: loader.export.clone(),
        config: loader.config.clone(),
        log_level: crate::logs::level(),
        deadline: remote.deadline,
    };
    let client = Arc::new(client::Client::new(remote, name, open)?);
    let (crashes, window) = remote.crash_budget;
    let mut options = crate::isolate::Isolation::new()
        .deadline(remote.deadline)
        .startup(remote.connect_timeout)
        .crash_budget(crashes, window);
    options.remote = Some(Arc::clone(&client));
    let dialed = client.dial(&loader.config)?;
    let manifest = tomada::Manifest::parse(&dialed.manifest).map_err(|e| LoadError::Unavailable {
        plugin: name.to_path_buf(),
        detail: format!("{} sent a malformed manifest: {e}", dialed.endpoint),
    })?;
    let inspection = Inspection {
        path: name.to_path_buf(),
        manifest: manifest.clone(),
        manifest_bytes: dialed.manifest.clone(),
        exports: vec![Export { manifest, manifest_bytes: dialed.manifest.clone() }],
        needed: Vec::new(),
    };
    // The same check as for a file: the manifest is the one the server's child loaded.
    let fit = crate::check::<C>(&inspection)?;
    // The host's trust policy, as far as it can hold a plugin whose file it never sees.
    if let Some(policy) = &loader.policy {
        policy.verify_remote(name, &inspection.manifest.info.name, &inspection.manifest.info.version)?;
    }
    client.keep(dialed);
    let isolated = crate::isolate::Isolated::start_remote(&inspection, &loader.config, options)?;
    let channel: Arc<dyn tomada::client::Channel> = isolated.clone();
    let Inspection { path, manifest, .. } = inspection;
    // SAFETY: the channel leads to a process serving a plugin whose manifest (the one
    // its process loaded) was checked against `C` above (its first `fit.provided`
    // methods match); calls cross by their byte form, never by pointer.
    let client = unsafe { C::__client(RawClient::new(Target::Remote(channel), fit.provided, manifest.contract.minor)) };
    Ok(Plugin {
        client: std::mem::ManuallyDrop::new(client),
        backend: crate::Backend::Isolated(isolated),
        manifest,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::{Open, VERSION};
    use std::time::Duration;

    fn open() -> Open {
        Open {
            plugin: "p.so".into(),
            contract: "c".into(),
            abi: 1,
            export: None,
            config: vec![1, 2],
            log_level: 3,
            deadline: Duration::from_millis(1500),
        }
    }

    #[test]
    fn an_opening_round_trips_and_another_version_is_refused_naming_both() {
        assert_eq!(Open::decode(&open().encode()), Ok(open()));
        assert_eq!(VERSION, crate::isolate::PROTOCOL, "one version for the opening and the frames");
        let mut other = open().encode();
        other[0] = 3; // (postcard: a small u32 is one byte)
        let why = Open::decode(&other).unwrap_err();
        assert!(
            why.contains(&format!("version 3 of the remote protocol; this server speaks version {VERSION}")),
            "{why}"
        );
    }
}

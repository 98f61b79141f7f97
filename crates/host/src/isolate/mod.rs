//! Isolation: run a plugin in a child process, behind the same typed handle.
//!
//! The host chooses per plugin ([`Mode`]): in-process (fast) or isolated (safe). An
//! isolated plugin is the very same `.so`, checked the same way (inspection, ABI,
//! layout) *before* any process starts, then loaded by a child process: the host's
//! own executable re-run as a runner ([`serve_if_runner`], nothing extra to ship), or
//! the `tomada-runner` binary. The host talks to it over an inherited Unix socket
//! (length-prefixed frames with request ids, a versioned handshake); the plugin's
//! stdout and stderr are separate pipes, forwarded line by line to
//! [`Isolation::on_output`], so nothing a plugin prints can corrupt the channel.
//!
//! A panic, `abort()`, segfault, `exit()`, a call that outlives its deadline, an
//! allocation past the memory limit, or a plugin closing its own socket: each is a
//! [`CallError`] for that call, and the next call starts a new
//! process — until the plugin crashes more often than its crash budget allows, and is
//! quarantined. The child dies with the host (socket EOF, and on Linux a parent-death
//! signal) and its process group is killed when the [`Plugin`](crate::Plugin) drops.
//!
//! On Windows the same, over two anonymous pipes instead of the socket, in a
//! kill-on-close job object instead of a process group, and without a sandbox
//! (asking for one is refused): see `windows.rs` and docs/isolation.md, "Windows".
//!
//! Inside, layers, each knowing only those below it: `launch` starts and supervises
//! the process; `transport` moves the channel's bytes (the socket, or shared-memory
//! rings on Linux, two pipes on Windows: a trait, so any byte stream can); `frame` frames them; `endpoint`
//! routes requests and replies; `protocol` holds what host and runner agree on
//! (descriptors, environment, handshake). See `docs/isolation.md`.
//!
//! ```no_run
//! use pluginapi::Greeter;
//! use tomada_host::isolate::{Isolation, Mode};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     tomada_host::isolate::serve_if_runner(); // first thing: the child runs here
//!     let mode = Mode::Isolated(Isolation::new().deadline(std::time::Duration::from_secs(2)));
//!     let plugin = tomada_host::load_with::<dyn Greeter>("bin/greeter_v1.so", &mode)?;
//!     println!("{}", plugin.greet("Mundo")?); // same call as in-process
//!     Ok(())
//! }
//! ```

mod buffers;
#[cfg(unix)]
mod contain;
mod deadline;
mod endpoint;
#[cfg(unix)]
mod ends;
pub(crate) mod frame;
mod launch;
mod options;
mod protocol;
mod runner;
#[cfg_attr(windows, allow(dead_code))] // (the sandbox is Linux's)
mod sandbox;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod spare;
mod spawner;
pub(crate) mod steps;
pub(crate) mod transport;
#[cfg(windows)]
mod windows;

use std::collections::VecDeque;
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
#[cfg(all(target_os = "linux", feature = "remote"))]
use std::os::unix::net::UnixStream;
#[cfg(unix)]
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tomada::CallError;
use tomada::client::Channel;
use tomada::ffi::Status;

pub use deadline::with_deadline;
#[cfg(all(target_os = "linux", feature = "remote"))]
pub(crate) use endpoint::{DEADLINE_AT, REQUEST_HEAD, read_time_left};
pub use options::{Isolation, Mode, OutputFn, Runner, Stream};
#[cfg(all(target_os = "linux", feature = "remote"))]
pub(crate) use protocol::PROTOCOL;
pub use runner::serve_if_runner;
pub use sandbox::Sandbox;

use endpoint::{Endpoint, Handler, Incoming, Objects, Request, WaitError};
use frame::ReadError;
#[cfg(unix)]
use frame::Waiter;
#[cfg(unix)]
use protocol::{FD_VAR, PLUGIN_FD};
use protocol::{LoadRequest, Refused};
#[cfg(all(target_os = "linux", feature = "remote"))]
use transport::Link;
use transport::Transport;

#[cfg(unix)]
use crate::Step;
use crate::file::PluginFile;
use crate::{Inspection, LaunchError, LoadError};

/// How long either side may spin for the next frame before it sleeps; only for a
/// peer that is awake and answered within this last time (see `frame::Waiter`), so a
/// side that waits after an idle gap or a long call sleeps at once.
pub(crate) const SPIN: Duration = Duration::from_micros(50);
/// How many callbacks made outside the host's calls may wait for the callback thread.
const CALLBACKS_QUEUED: usize = 256;
/// How often the reader of async calls looks at their deadlines.
const ASYNC_TICK: Duration = Duration::from_millis(20);
/// How often the reader of the main rings looks whether the connection ended, when
/// no async call is in flight (see [`Isolated::watch_main`]); an async call made
/// meanwhile has its deadline looked at this late at worst.
const WATCH_TICK: Duration = Duration::from_millis(250);
/// How long a child whose channel ended may take to exit by itself.
const END_GRACE: Duration = Duration::from_millis(500);

/// A running child process and the host's end of the channel, shared by the calls in
/// flight (see [`endpoint`]), with the objects the host gave the plugin.
struct Connection {
    /// The plugin's process (`None` for a remote plugin's connection: the server has it).
    process: Option<launch::Process>,
    endpoint: Endpoint,
    /// The lanes (see [`Isolation::lanes`]): more endpoints to the same process, each
    /// over rings of its own that a thread of its own serves there, taken by one
    /// blocking call at a time. Set once the child serves them (see
    /// [`Isolated::start_lanes`]); until then calls take the main rings.
    lanes: OnceLock<Vec<Lane>>,
    /// The lanes passed to the child at its start, until they are started.
    #[cfg(unix)]
    dormant: Mutex<Vec<transport::Link>>,
    /// The lanes were asked for (or there are none to ask for).
    #[cfg(unix)]
    lanes_asked: AtomicBool,
    /// Calls went through lanes: a thread reads the main rings for good (see
    /// [`Isolated::watch_main`]), as no call may be waiting there to read them.
    watching: AtomicBool,
    /// How many lanes are taken (see [`Endpoint::crowd`]).
    crowd: Arc<std::sync::atomic::AtomicUsize>,
    /// The thread that reads the main rings for good once lanes were used (see
    /// [`Isolated::watch_main`]), to wake when it may read again.
    watcher: Mutex<Option<std::thread::Thread>>,
    /// The write end of the pipe the child's pool threads wait on (its descriptor 5
    /// there is an opening of its own); non-blocking, and the host's alone.
    #[cfg(unix)]
    nudge: OwnedFd,
    /// The semaphore the child's pool threads wait on (Windows).
    #[cfg(windows)]
    nudge: std::os::windows::io::OwnedHandle,
    /// A reader of each pipe the host writes (the nudge, the child's bells), never read:
    /// held so that a plugin closing its own ends cannot turn the host's next write
    /// into `EPIPE` and a `SIGPIPE` (which a host that does not ignore it dies of; Rust's
    /// runtime ignores it). A precaution: no test has shown that write yet. Empty
    /// where the host ignored `SIGPIPE` when this connection was made (three
    /// descriptors fewer per plugin): a host that then stops ignoring it goes back to
    /// the risk.
    #[cfg(unix)]
    _readers: Vec<OwnedFd>,
    /// The host's objects the plugin holds (or borrows for a call), by number.
    objects: Objects,
    /// The thread serving callbacks made outside any host call (from a plugin's own
    /// threads), started when the first comes.
    callbacks: Mutex<Option<std::sync::mpsc::SyncSender<Request>>>,
    /// The plugin's name, for its log records.
    name: String,
    /// Whether a thread reads for the async calls in flight.
    async_reader: std::sync::atomic::AtomicBool,
    /// A connection to a remote server (see [`crate::remote`]), not a child: the
    /// frames go through TLS on this socket, and ending it closes the connection.
    remote: Option<RemoteEnd>,
}

/// A lane of a connection: an endpoint over rings of its own, to the same process
/// (and objects) as the main one, served there by a thread of its own.
struct Lane {
    endpoint: Endpoint,
    /// Taken by a call (and the calls it makes within the plugin's callbacks).
    busy: AtomicBool,
}

/// For a blocking call on the main rings of a connection whose main rings a thread
/// watches (see [`Isolated::watch_main`]): when it ends, and no other blocking call
/// waits there, wakes that thread to read them again.
struct MainHold<'a>(&'a Connection);

impl Drop for MainHold<'_> {
    fn drop(&mut self) {
        if self.0.watching.load(Ordering::SeqCst)
            && !self.0.endpoint.awaits_blocking()
            && let Some(watcher) = Endpoint::lock(&self.0.watcher).as_ref()
        {
            watcher.unpark();
        }
    }
}

/// Lets go of a lane (its flag, and its count among the busy) when the call that
/// took it ends.
struct LaneHold<'a>(&'a AtomicBool, &'a std::sync::atomic::AtomicUsize);

impl Drop for LaneHold<'_> {
    fn drop(&mut self) {
        self.1.fetch_sub(1, Ordering::Relaxed);
        self.0.store(false, Ordering::Release);
    }
}

/// A remote plugin's connection, seen from the host.
#[cfg_attr(not(all(target_os = "linux", feature = "remote")), allow(dead_code))] // (made only by `connect`)
struct RemoteEnd {
    /// Its socket (shut down to end it: the server then ends the plugin's process).
    tcp: std::net::TcpStream,
    /// The endpoint it reached.
    endpoint: String,
}

impl Connection {
    /// Lane `i`, which [`lane_for`] gave (so the lanes are started).
    fn lane(&self, i: usize) -> &Lane {
        &self.lanes.get().expect("a lane is taken only once the lanes are started")[i]
    }

    /// Wakes one pool thread of the child.
    fn nudge(&self) {
        #[cfg(windows)]
        windows::post(&self.nudge);
        #[cfg(unix)]
        let one = 1u64;
        // SAFETY: writing 8 bytes from a local to our pipe. It never blocks: the write
        // end is non-blocking and only this process holds it; a full pipe (`EAGAIN`)
        // holds thousands of posts the child has not taken, so one more is not needed.
        #[cfg(unix)]
        unsafe {
            libc::write(self.nudge.as_raw_fd(), (&raw const one).cast(), 8)
        };
    }

    /// After a call was sent, `others` other calls being in flight when it was
    /// registered: wakes a pool thread of the child to read it, as the threads reading
    /// so far may be busy serving the others. Not when the send found the child's
    /// reader asleep (it rang it, see `transport::shm`): that reader takes this call,
    /// and nudges a pool thread itself if more is there once it has (`runner.rs`,
    /// `Server::let_go`; a thread waiting for a callback's answer does so before it
    /// serves what it read, `Endpoint::wait`). Either it slept with this call's bytes already in the ring,
    /// or it went to sleep only after taking them (a reader looks for bytes after
    /// saying it sleeps, and a writer looks at whether it sleeps after publishing
    /// them): this call is read, and the nudge would only wake a thread for nothing.
    ///
    /// A call that counted no others when it was registered looks again now, with its
    /// bytes sent: calls registered after it may have been sent before it, read, and be
    /// holding the child's threads (two calls that wait for each other in the plugin
    /// then wait for good). A call that is still counted now is one the child may be
    /// serving; one that is not was answered, and the child's thread that served it
    /// reads again.
    fn nudge_for(&self, others: usize) {
        if self.endpoint.link.peer_awake() && (others > 0 || self.endpoint.others_in_flight() > 0) {
            self.nudge();
        }
    }

    /// Ends every call in flight with `error`, and drops the host's objects the
    /// plugin held: a restarted process does not have them.
    fn close(&self, error: CallError) {
        for lane in self.lanes.get().into_iter().flatten() {
            lane.endpoint.close(error.clone());
        }
        self.endpoint.close(error);
        self.objects.clear();
        self.stop_callbacks();
    }

    /// Ends the callback thread, if one runs.
    fn stop_callbacks(&self) {
        drop(self.callbacks.lock().unwrap_or_else(|p| p.into_inner()).take());
    }

    /// Kills the whole process group and reaps the child: no zombie, no orphan.
    fn kill(&self) -> Option<ExitStatus> {
        self.stop_callbacks();
        if let Some(remote) = &self.remote {
            // The server sees the end and ends the plugin's process.
            let _ = remote.tcp.shutdown(std::net::Shutdown::Both);
            return None;
        }
        self.process.as_ref()?.kill()
    }

    /// Gives a child whose channel ended up to `grace` to exit by itself (so its
    /// own exit status, e.g. the signal that crashed it, is what gets reported),
    /// then kills what is left of its process group and reaps it.
    fn end(&self, grace: Duration) -> Option<ExitStatus> {
        if let Some(process) = &self.process {
            process.wait_exit(grace);
        }
        self.kill()
    }
}

/// The state of an isolated plugin.
struct State {
    connection: Option<Arc<Connection>>,
    crashes: VecDeque<Instant>,
    quarantined: Option<String>,
}

/// An isolated plugin: the channel its clients' calls go through.
pub(crate) struct Isolated {
    me: std::sync::Weak<Isolated>,
    path: PathBuf,
    /// The inspected file, open: each (re)started child inherits it (`None` for a
    /// remote plugin: the server has the file).
    file: Option<std::fs::File>,
    /// Keeps `file`, if it is a shared sealed copy, on offer to other isolated plugins
    /// of the same unchanged file while this one lives (`crate::file::shared`).
    _sharing: crate::file::Sharing,
    name: String,
    manifest_bytes: Vec<u8>,
    /// Which export of the library the child opens ([`tomada::Manifest::index`]).
    export: u32,
    /// What the plugin's constructor receives (`tomada::context()`).
    config: Vec<u8>,
    options: Isolation,
    state: Mutex<State>,
    /// The buffers lent to blocking calls' arguments (`Channel::lend`).
    buffers: buffers::Buffers,
    /// Its use of spare runners (`Isolation::spare_runner`), if it asked for them.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    spare: Option<spare::Use>,
}

impl Isolated {
    /// Starts the child and loads the plugin in it.
    pub(crate) fn start(
        inspection: &Inspection,
        file: &PluginFile,
        config: &[u8],
        options: Isolation,
    ) -> Result<Arc<Isolated>, LoadError> {
        let sharing = file.sharing.clone();
        let file = file.file.try_clone().map_err(|e| LoadError::Io { path: inspection.path.clone(), source: e })?;
        Isolated::begin(inspection, Some((file, sharing)), config, options)
    }

    /// Connects to a remote plugin (`options.remote` is set), whose manifest the
    /// server sent and the caller checked: `inspection` holds it.
    #[cfg(all(target_os = "linux", feature = "remote"))]
    pub(crate) fn start_remote(
        inspection: &Inspection,
        config: &[u8],
        options: Isolation,
    ) -> Result<Arc<Isolated>, LoadError> {
        Isolated::begin(inspection, None, config, options)
    }

    fn begin(
        inspection: &Inspection,
        file: Option<(std::fs::File, crate::file::Sharing)>,
        config: &[u8],
        options: Isolation,
    ) -> Result<Arc<Isolated>, LoadError> {
        if let Err(reason) = options.check() {
            return Err(LoadError::Isolation {
                path: inspection.path.clone(),
                source: LaunchError::BadOptions { reason },
            });
        }
        let (file, sharing) = file.map_or((None, Default::default()), |(f, s)| (Some(f), s));
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        let spare = match &options.runner {
            _ if !options.spare_runner || file.is_none() => None,
            #[cfg(feature = "remote")]
            _ if options.remote.is_some() => None,
            Runner::CurrentExe => std::env::current_exe().ok(),
            Runner::Path(p) => Some(p.clone()),
        }
        .map(|exe| spare::Use::new(spare::Key::new(exe, &options)));
        let isolated = Arc::new_cyclic(|me| Isolated {
            me: me.clone(),
            path: inspection.path.clone(),
            file,
            _sharing: sharing,
            name: inspection.manifest.info.name.clone(),
            manifest_bytes: inspection.manifest_bytes.clone(),
            export: inspection.manifest.index,
            config: config.to_vec(),
            options,
            state: Mutex::new(State { connection: None, crashes: VecDeque::new(), quarantined: None }),
            buffers: buffers::Buffers::default(),
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            spare,
        });
        let connection = Arc::new(isolated.spawn()?);
        isolated.lock().connection = Some(Arc::clone(&connection));
        isolated.lanes_at_start(&connection);
        Ok(isolated)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lanes a new process gets (see [`Isolation::lanes`]).
    #[cfg(unix)]
    fn lane_count(&self) -> usize {
        #[cfg(target_os = "linux")]
        return self.options.lane_count();
        #[cfg(not(target_os = "linux"))]
        0
    }

    /// The pid of the plugin's current process, if one is running.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.lock().connection.as_ref().and_then(|c| c.process.as_ref()).map(|p| p.pid)
    }

    /// The current process's socket and a way to nudge it, for a relay that carries its
    /// frames elsewhere (see [`crate::remote`]: the server's side).
    #[cfg(all(target_os = "linux", feature = "remote"))]
    pub(crate) fn relay_ends(&self) -> Option<(UnixStream, Box<dyn Fn() + Send>)> {
        let connection = self.lock().connection.clone()?;
        let stream = connection.endpoint.link.socket()?.try_clone().ok()?;
        Some((stream, Box::new(move || connection.nudge())))
    }

    /// For a relay whose child closed its socket: waits briefly for the child to exit,
    /// kills what is left, and returns how it ended (its signal or exit code); with
    /// `now` (a call past its deadline), kills it without waiting.
    #[cfg(all(target_os = "linux", feature = "remote"))]
    pub(crate) fn relay_ended(&self, now: bool) -> Option<ExitStatus> {
        let connection = self.lock().connection.take()?;
        if now { connection.kill() } else { connection.end(END_GRACE) }
    }

    #[cfg(unix)]
    fn spawn(&self) -> Result<Connection, LoadError> {
        #[cfg(all(target_os = "linux", feature = "remote"))]
        if let Some(client) = &self.options.remote {
            return self.connect(client);
        }
        steps::mark("host: spawn begins (copy + inspection done)");
        let fail = |source: LaunchError| LoadError::Isolation { path: self.path.clone(), source };
        if std::env::var_os(FD_VAR).is_some() {
            // A host that forgot `serve_if_runner` would otherwise start copies of
            // itself, each starting another.
            return Err(fail(LaunchError::NotServing));
        }
        let Some(file) = &self.file else {
            return Err(fail(LaunchError::Setup {
                step: Step::Duplicate,
                source: std::io::Error::other("a remote plugin has no plugin file here"),
            }));
        };
        // A spare runner, if the options keep one and it is ready (its hello read, the
        // plugin file sent); else a runner started now.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        let taken = self.spare.as_ref().and_then(|spare| {
            let (process, ends) = spare.take(&self.options, &self.name, file)?;
            Some((process, ends, spare.key().exe.clone()))
        });
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        let taken = None;
        let greeted = taken.is_some();
        let (process, ends, exe) = match taken {
            Some(taken) => taken,
            None => {
                let exe = match &self.options.runner {
                    Runner::CurrentExe => {
                        std::env::current_exe().map_err(|source| fail(LaunchError::NoExecutable { source }))?
                    }
                    Runner::Path(p) => p.clone(),
                };
                let (ends, (pass, last_fd)) =
                    ends::make(self.options.socket_only, self.lane_count(), Some(file.as_fd())).map_err(fail)?;
                let process = launch::start(launch::Launch {
                    exe: &exe,
                    options: &self.options,
                    name: &self.name,
                    env: ends::child_env(self.options.max_frame, self.options.socket_only, self.lane_count(), false),
                    pass,
                    last_fd,
                })
                .map_err(fail)?;
                (process, ends, exe)
            }
        };
        // Frames go through the shared memory once the handshake (on the socket) is
        // done; sending a call waits for room no longer than a call's deadline.
        let ends::Linked { link, lanes, nudge, readers } = match ends.link(self.options.deadline) {
            Ok(linked) => linked,
            Err(e) => {
                process.kill();
                return Err(fail(e));
            }
        };
        let connection = Connection {
            process: Some(process),
            endpoint: Endpoint::new(link, true, Waiter::new(SPIN), self.options.max_frame),
            lanes: OnceLock::new(),
            dormant: Mutex::new(lanes),
            lanes_asked: AtomicBool::new(false),
            watching: AtomicBool::new(false),
            crowd: Arc::default(),
            watcher: Mutex::new(None),
            nudge,
            _readers: readers,
            objects: Objects::new(),
            callbacks: Mutex::new(None),
            async_reader: std::sync::atomic::AtomicBool::new(false),
            name: self.name.clone(),
            remote: None,
        };
        // The handshake: hello (version), load, ready (the manifest it read).
        let socket = connection.endpoint.link.socket().expect("a child's channel has its socket");
        let result = self.handshake(socket, &exe, greeted, PLUGIN_FD);
        // Sending a call blocks once the socket buffer is full: no longer than a
        // call's deadline (set once here, not per call: it is a system call).
        let _ = socket.set_write_timeout(Some(self.options.deadline));
        match result {
            Ok(held) => {
                // (A lane the child does not hold is not used.)
                Endpoint::lock(&connection.dormant).truncate(usize::from(held));
                // The next start's runner, started now (in the background).
                #[cfg(all(target_os = "linux", target_env = "gnu"))]
                if let Some(spare) = &self.spare {
                    spare.replenish();
                }
                Ok(connection)
            }
            Err(refused) => Err(self.refused(&connection, refused)),
        }
    }

    /// The handshake on a new process's channel (see [`protocol`]), naming the plugin
    /// file as `plugin_fd` there (its hello read already if `greeted`: a spare
    /// runner's); `Ok` once the child loaded the plugin the host inspected, with how
    /// many of the lanes passed it holds (to start when asked).
    fn handshake(
        &self,
        channel: &(impl Transport + ?Sized),
        exe: &Path,
        greeted: bool,
        plugin_fd: i32,
    ) -> Result<u8, Refused> {
        let filters = sandbox::filters(self.options.sandbox.as_ref())
            .map_err(|why| Refused::Launch(LaunchError::Sandbox { source: std::io::Error::other(why) }))?;
        let request = LoadRequest {
            path: self.path.clone(),
            fd: plugin_fd,
            sandbox: self.options.sandbox.clone(),
            log_level: self.options.log_level.unwrap_or_else(crate::logs::level),
            export: self.export,
            config: self.config.clone(),
            manifest: self.manifest_bytes.clone(),
            filters,
            several_cpus: transport::several_cpus(),
        };
        let (startup, max) = (self.options.startup, self.options.max_frame);
        let ready = protocol::host_handshake(channel, exe, greeted, &request, startup, max, |record| {
            crate::logs::deliver_encoded(&self.name, record);
        });
        steps::mark("host: ready read");
        match ready {
            Ok((manifest, lanes)) if manifest == self.manifest_bytes => Ok(lanes),
            Ok(_) => Err(Refused::Launch(LaunchError::OtherManifest)),
            Err(refused) => Err(refused),
        }
    }

    /// Ends `connection`, whose handshake failed, and says why.
    fn refused(&self, connection: &Connection, refused: Refused) -> LoadError {
        let status = connection.end(END_GRACE);
        match refused {
            // The child's own `LoadError`: the plugin's, as in-process.
            Refused::Plugin(e) => e,
            Refused::Launch(why) => {
                let stderr = connection.process.as_ref().map_or_else(Vec::new, launch::Process::stderr_tail);
                LoadError::Isolation {
                    path: self.path.clone(),
                    source: LaunchError::Ended { why: Box::new(why), status, stderr },
                }
            }
        }
    }

    /// Connects to a remote plugin's server: the host's end of a socket whose other end
    /// a relay pumps through TLS (see [`crate::remote`]); the frames are the isolated
    /// ones, and the server's child answers them.
    #[cfg(all(target_os = "linux", feature = "remote"))]
    fn connect(&self, client: &crate::remote::client::Client) -> Result<Connection, LoadError> {
        let fail = |detail: String| LoadError::Unavailable { plugin: self.path.clone(), detail };
        // A reconnection is made for a call: within the time its deadline leaves (the
        // plugin's own, or an enclosing `with_deadline` scope's), not a whole
        // `Remote::connect_timeout` past it.
        let dialed = client.dial_within(&self.config, deadline::left(self.options.deadline))?;
        if dialed.manifest != self.manifest_bytes {
            return Err(fail(format!(
                "{} now serves another build of the plugin than the host checked; load it again",
                dialed.endpoint
            )));
        }
        let endpoint = dialed.endpoint.clone();
        let (tls, tcp) = dialed.into_parts();
        let tcp_for_end =
            tcp.try_clone().map_err(|e| fail(format!("cannot duplicate the connection's socket: {e}")))?;
        let transport = crate::remote::transport::Tls::new(tls, tcp, self.options.deadline)
            .map_err(|e| fail(format!("cannot set up the connection's socket: {e}")))?;
        // Nobody reads these nudges (the server's relay nudges its child as frames
        // pass): the pipe only keeps `nudge` valid, and a full pipe is ignored.
        let (nudge, reader, _) = launch::nudge_pipe().map_err(|e| fail(e.to_string()))?;
        Ok(Connection {
            process: None,
            endpoint: Endpoint::new(
                Link::Other(Box::new(transport)),
                true,
                // (An answer over the network never comes within a spin.)
                Waiter::new(Duration::ZERO),
                self.options.max_frame,
            ),
            lanes: OnceLock::new(),
            dormant: Mutex::default(),
            lanes_asked: AtomicBool::new(true),
            watching: AtomicBool::new(false),
            crowd: Arc::default(),
            watcher: Mutex::new(None),
            nudge,
            _readers: if launch::sigpipe_ignored() { Vec::new() } else { vec![reader] },
            objects: Objects::new(),
            callbacks: Mutex::new(None),
            name: self.name.clone(),
            async_reader: std::sync::atomic::AtomicBool::new(false),
            remote: Some(RemoteEnd { tcp: tcp_for_end, endpoint }),
        })
    }

    /// Takes the ending of `connection` (failed with `fault`) for this call: marks it
    /// ending and detaches it, returning the state still locked; or, if another call
    /// ended it meanwhile, that call's error (or `TimedOut`, when this call ran past
    /// its own deadline all the same).
    fn take_ending(&self, connection: &Arc<Connection>, fault: &ReadError) -> Result<MutexGuard<'_, State>, CallError> {
        let mut state = self.lock();
        {
            let mut calls = connection.endpoint.flight();
            if let Some(e) = &calls.ended {
                return Err(match fault {
                    ReadError::TimedOut => CallError::TimedOut { deadline: self.options.deadline },
                    _ => e.clone(),
                });
            }
            calls.ending = true;
        }
        // (No new call takes a lane of it either.)
        for lane in connection.lanes.get().into_iter().flatten() {
            lane.endpoint.flight().ending = true;
        }
        if state.connection.as_ref().is_some_and(|c| Arc::ptr_eq(c, connection)) {
            state.connection = None;
        }
        Ok(state)
    }

    /// Ends a remote plugin's connection that failed during a call: every call in
    /// flight was sent, so it may have run. A crash the server reports counts towards
    /// quarantine, as an isolated crash does; a lost connection does not (the network
    /// may be at fault), but its endpoint is tried last for a while. The next call
    /// reconnects.
    fn end_remote(&self, connection: &Arc<Connection>, fault: ReadError) -> CallError {
        let mut state = match self.take_ending(connection, &fault) {
            Ok(state) => state,
            Err(e) => return e,
        };
        let endpoint = connection.remote.as_ref().map_or("", |r| r.endpoint.as_str());
        let detail = match &fault {
            ReadError::Eof => {
                format!("{endpoint} closed the connection (the server stopped, or the plugin's process ended)")
            }
            ReadError::TimedOut => {
                "another call ran past its deadline (its own, or its `with_deadline` scope's)".to_string()
            }
            ReadError::Malformed(why) => format!("a malformed frame from {endpoint}: {why}"),
            ReadError::Io(e) => format!("the connection to {endpoint} failed: {e}"),
            ReadError::Ended { timed_out: true, .. } => {
                format!("{endpoint} ended the plugin's process: a call ran past its deadline")
            }
            ReadError::Ended { .. } => {
                format!("the plugin's process on {endpoint} ended (the server's log says more)")
            }
        };
        // The server or the link failed, not the plugin: the next connection tries the
        // other endpoints first.
        #[cfg(all(target_os = "linux", feature = "remote"))]
        if matches!(fault, ReadError::Eof | ReadError::Io(_) | ReadError::Malformed(_))
            && let Some(client) = &self.options.remote
        {
            client.failed(endpoint);
        }
        let (mine, others) = match fault {
            ReadError::TimedOut => (
                CallError::TimedOut { deadline: self.options.deadline },
                CallError::Disconnected { may_have_run: true, detail },
            ),
            // The server ended it past a deadline (the host's own came first, usually).
            ReadError::Ended { timed_out: true, .. } => (
                CallError::TimedOut { deadline: self.options.deadline },
                CallError::Disconnected { may_have_run: true, detail },
            ),
            // The server said so: a crash, as an isolated child's, with its signal or
            // code, counted as one.
            ReadError::Ended { signal, exit_code, .. } => {
                let detail = match self.crashed(&mut state) {
                    Some(quarantine) => format!("{detail}; {quarantine}"),
                    None => detail,
                };
                let e = CallError::Crashed { signal, exit_code, detail };
                (e.clone(), e)
            }
            _ => {
                let e = CallError::Disconnected { may_have_run: true, detail };
                (e.clone(), e)
            }
        };
        drop(state);
        connection.kill();
        connection.close(others);
        mine
    }

    /// Records a crash; returns the quarantine message if the budget is spent.
    fn crashed(&self, state: &mut State) -> Option<String> {
        let now = Instant::now();
        state.crashes.push_back(now);
        while state.crashes.front().is_some_and(|t| now.duration_since(*t) > self.options.crash_window) {
            state.crashes.pop_front();
        }
        if state.crashes.len() >= self.options.crash_budget as usize {
            let why = format!(
                "`{}` crashed {} times within {:?}; it is not restarted",
                self.name,
                state.crashes.len(),
                self.options.crash_window
            );
            state.quarantined = Some(why.clone());
            Some(why)
        } else {
            None
        }
    }
}

impl Isolated {
    fn quarantined(&self) -> CallError {
        CallError::Quarantined { crashes: self.options.crash_budget, window: self.options.crash_window }
    }
}

/// The lane a blocking call on `connection` takes (its index, and the hold that
/// lets go of it): within a request of the plugin that came through one of its lanes,
/// that lane (so the plugin's thread waiting there serves the call, re-entrant, as
/// in-process); within one that came through the main rings, none; else the first
/// free one (one atomic try each), or none if all are taken.
fn lane_for(connection: &Connection) -> Option<(usize, Option<LaneHold<'_>>)> {
    let lanes = connection.lanes.get().filter(|lanes| !lanes.is_empty())?;
    let serving = endpoint::serving();
    if serving != 0 {
        if std::ptr::eq(serving as *const Endpoint, &connection.endpoint) {
            return None;
        }
        if let Some(i) = lanes.iter().position(|l| std::ptr::eq(serving as *const Endpoint, &l.endpoint)) {
            return Some((i, None));
        }
    }
    lanes.iter().enumerate().find_map(|(i, lane)| {
        let free = !lane.busy.load(Ordering::Relaxed) && !lane.busy.swap(true, Ordering::Acquire);
        free.then(|| {
            connection.crowd.fetch_add(1, Ordering::Relaxed);
            (i, Some(LaneHold(&lane.busy, &connection.crowd)))
        })
    })
}

/// The error for a process that ended during a call.
fn crashed(exit: Option<ExitStatus>, quarantine: Option<String>) -> CallError {
    let mut detail = crate::error::describe_exit(exit);
    if let Some(q) = quarantine {
        detail = format!("{detail}; {q}");
    }
    #[cfg(unix)]
    let signal = exit.and_then(|s| s.signal());
    #[cfg(windows)]
    let signal = None;
    CallError::Crashed { signal, exit_code: exit.and_then(|s| s.code()), detail }
}

impl Isolated {
    /// The running process, started if there is none.
    fn connection(&self) -> Result<Arc<Connection>, CallError> {
        let mut state = self.lock();
        if state.quarantined.is_some() {
            return Err(self.quarantined());
        }
        if let Some(c) = &state.connection {
            return Ok(Arc::clone(c));
        }
        match self.spawn() {
            Ok(c) => {
                let c = Arc::new(c);
                state.connection = Some(Arc::clone(&c));
                drop(state);
                self.lanes_at_start(&c);
                Ok(c)
            }
            Err(LoadError::Unavailable { detail, .. }) => Err(CallError::Unavailable { detail }),
            Err(LoadError::Overloaded { detail, .. }) => Err(CallError::Overloaded { detail }),
            #[cfg(all(target_os = "linux", feature = "remote"))]
            Err(e) if self.options.remote.is_some() => Err(CallError::Unavailable { detail: e.to_string() }),
            Err(e) => Err(match self.crashed(&mut state) {
                Some(_) => self.quarantined(),
                None => CallError::Crashed {
                    signal: None,
                    exit_code: None,
                    detail: format!("the plugin's process could not be restarted: {e}"),
                },
            }),
        }
    }

    /// Ends `connection`, which failed during a call (`fault`): kills its process
    /// (a malformed frame or a hang) or reaps it (it died), counts the crash, and
    /// fails every other call in flight. Returns this call's error. The next call
    /// starts a new process.
    fn end(&self, connection: &Arc<Connection>, fault: ReadError) -> CallError {
        self.end_as(connection, fault, false, None)
    }

    /// [`Isolated::end`]; by a thread that only reads (`reader`, no call of its own:
    /// see [`Isolated::read_for_async`]), the calls in flight get the error a call
    /// that found `fault` itself gets (a malformed frame is a channel error for them,
    /// not a crash), but past a deadline.
    /// `late`: what ran past its deadline, if not a call (the instance's `Drop`).
    fn end_as(&self, connection: &Arc<Connection>, fault: ReadError, reader: bool, late: Option<&str>) -> CallError {
        if connection.remote.is_some() {
            return self.end_remote(connection, fault);
        }
        // Held throughout: no new process starts before this one is reaped and counted.
        let mut state = match self.take_ending(connection, &fault) {
            Ok(state) => state,
            Err(e) => return e,
        };
        let (mine, why) = match fault {
            // The child answers a value, a caught panic, or undecodable arguments;
            // a malformed frame is a broken or forged channel.
            ReadError::Malformed(why) => {
                let message = format!("a malformed answer: {why}");
                (CallError::Channel { message: message.clone() }, message)
            }
            ReadError::Io(e) => {
                let message = format!("the channel failed: {e}");
                (CallError::Channel { message: message.clone() }, message)
            }
            ReadError::TimedOut => (
                CallError::TimedOut { deadline: self.options.deadline },
                match late {
                    Some(what) => format!("{what} ran past the call deadline"),
                    None => "another call ran past its deadline (its own, or its `with_deadline` scope's)".to_string(),
                },
            ),
            ReadError::Eof | ReadError::Ended { .. } => {
                (CallError::Crashed { signal: None, exit_code: None, detail: String::new() }, String::new())
            }
        };
        // (A child that closed the channel may still be alive: it is killed too.)
        let exit =
            if matches!(mine, CallError::Crashed { .. }) { connection.end(END_GRACE) } else { connection.kill() };
        let quarantine = self.crashed(&mut state);
        // What the calls in flight are told, when a reader with no call of its own
        // found the fault: the error a call that found it gets, and that the host
        // killed the process (and quarantined the plugin, if this spent its budget).
        let killed = format!(
            "; the host killed the plugin's process{}",
            quarantine.as_deref().map(|q| format!(" and quarantined the plugin ({q})")).unwrap_or_default()
        );
        let mine = match mine {
            CallError::Crashed { .. } => crashed(exit, quarantine.clone()),
            other => other,
        };
        let others = match &mine {
            CallError::Crashed { .. } => mine.clone(),
            _ => {
                let mut e = crashed(exit, quarantine);
                if let CallError::Crashed { detail, .. } = &mut e {
                    *detail = format!("{detail}: the host killed it, as {why}");
                }
                e
            }
        };
        let others = match (&mine, reader) {
            (CallError::Channel { message }, true) => CallError::Channel { message: format!("{message}{killed}") },
            (CallError::TimedOut { .. }, _) | (_, false) => others,
            (_, true) => mine.clone(),
        };
        connection.close(others);
        mine
    }
}

impl Isolated {
    /// This isolated plugin, shared.
    fn arc(&self) -> Arc<Isolated> {
        self.me.upgrade().expect("an `Isolated` is only reached through its `Arc`")
    }

    /// Calls method `method` of object `target` (0: the plugin's instance) in the
    /// process of `connection`, serving the plugin's callbacks meanwhile.
    fn call_on(
        &self,
        connection: &Arc<Connection>,
        target: u64,
        method: u32,
        args: &mut Vec<u8>,
    ) -> Result<Result<Vec<u8>, CallError>, Arc<Connection>> {
        self.call_on_for(connection, target, method, args, &[], false)
    }

    /// [`Isolated::call_on`], of arguments with `gathered` ranges at their places
    /// (see [`Channel::call_gathered`], checked in order); with `bytes`, for a
    /// result that is a byte string: its bytes alone come back (see
    /// [`Channel::call_bytes`]).
    fn call_on_for(
        &self,
        connection: &Arc<Connection>,
        target: u64,
        method: u32,
        args: &mut Vec<u8>,
        gathered: &[tomada::client::Gathered<'_>],
        bytes: bool,
    ) -> Result<Result<Vec<u8>, CallError>, Arc<Connection>> {
        self.call_on_within(connection, target, method, args, gathered, bytes, None)
    }

    /// [`Isolated::call_on_for`], whose request must be taken by `send_by` if that
    /// comes before the call's deadline (a plugin that takes nothing by then is
    /// ended, as at the deadline); its answer is waited for up to the deadline.
    #[allow(clippy::too_many_arguments)]
    fn call_on_within(
        &self,
        connection: &Arc<Connection>,
        target: u64,
        method: u32,
        args: &mut Vec<u8>,
        gathered: &[tomada::client::Gathered<'_>],
        bytes: bool,
        send_by: Option<Instant>,
    ) -> Result<Result<Vec<u8>, CallError>, Arc<Connection>> {
        let (deadline, given) = deadline::for_call(self.options.deadline);
        if deadline <= Instant::now() {
            // (A scope's time already spent: not sent, nothing to end.)
            return Ok(Err(CallError::TimedOut { deadline: given }));
        }
        // A lane of its own if one is free (or the one whose callback this thread
        // serves); else the main rings.
        let (lane, _hold) = match lane_for(connection) {
            Some((index, hold)) => (Some(index), hold),
            None => (None, None),
        };
        if lane.is_some() && !connection.watching.load(Ordering::Relaxed) {
            self.watch_main(connection);
        }
        // (Declared before the registration: its drop comes after the call is out of
        // flight, whichever way it returns.)
        let _main = lane.is_none().then(|| MainHold(connection));
        let endpoint = lane.map_or(&connection.endpoint, |i| &connection.lane(i).endpoint);
        let registered = if bytes { endpoint.register_bytes() } else { endpoint.register() };
        let Some((id, others)) = registered else {
            // Another call is ending this process: a call to the plugin goes to the
            // next one, a call to an object of this one fails as the process did.
            let ended = connection.endpoint.flight().ended.clone();
            return match (target, ended, &connection.remote) {
                (0, _, _) => Err(Arc::clone(connection)),
                // A remote object stays with its connection: not sent anywhere else.
                (_, ended, Some(remote)) => Ok(Err(CallError::Disconnected {
                    may_have_run: false,
                    detail: format!(
                        "this object lived in the plugin's process reached through {}, whose connection ended{}; \
                         objects do not move to a new connection: get a new one through the plugin",
                        remote.endpoint,
                        ended.map(|e| format!(" ({e})")).unwrap_or_default()
                    ),
                })),
                (_, Some(e), None) => Ok(Err(e)),
                (_, None, None) => Ok(Err(crashed(None, None))),
            };
        };
        let sent = if let Some(by) = send_by.filter(|by| *by < deadline) {
            debug_assert!(gathered.is_empty(), "a request sent by a time has its arguments in one piece");
            endpoint.send_by(id, target, method, args, Some(deadline), by)
        } else if gathered.is_empty() {
            endpoint.send(id, target, method, args, Some(deadline))
        } else {
            let mut parts: Vec<&[u8]> = Vec::with_capacity(2 * gathered.len() + 1);
            let mut from = 0;
            for g in gathered {
                parts.extend([&args[from..g.at], g.bytes]);
                from = g.at;
            }
            parts.push(&args[from..]);
            endpoint.send_parts(id, target, method, &parts, Some(deadline))
        };
        let handler = HostHandler { isolated: self.arc(), connection: Arc::clone(connection), lane };
        let outcome = match sent {
            Ok(()) => {
                if lane.is_none() {
                    connection.nudge_for(others);
                }
                let mut spare = std::mem::take(args);
                spare.clear();
                endpoint.wait(id, Some(deadline), &handler, spare)
            }
            // The child is gone: its socket end is closed. Report it as such.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                endpoint.unregister(id);
                Err(WaitError::Fault(ReadError::TimedOut))
            }
            Err(e) => {
                endpoint.unregister(id);
                if connection.remote.is_some() {
                    // The request's last byte never reached the socket: the TLS record
                    // holding it cannot be decrypted without it, and the connection ends
                    // now, so the server's plugin never got the whole call.
                    let detail = format!("the request could not be sent: {e}");
                    let _ = self.end(connection, ReadError::Io(e));
                    return Ok(Err(CallError::Disconnected { may_have_run: false, detail }));
                }
                Err(WaitError::Fault(ReadError::Eof))
            }
        };
        // Calls overlapped on the main rings: the child starts its lanes (once), for
        // the calls to come. (Not within a callback: a call made there goes where
        // the callback came from.)
        #[cfg(unix)]
        if lane.is_none()
            && others > 0
            && outcome.is_ok()
            && !connection.lanes_asked.load(Ordering::Relaxed)
            && endpoint::serving() == 0
        {
            self.start_lanes(connection);
        }
        Ok(match outcome {
            Ok((endpoint::LENGTH_REFUSED, _)) => Err(CallError::Answer(tomada::wire::WireError::Malformed(
                "the length of a byte string the plugin answered is not that of its bytes",
            ))),
            Ok((status, body)) => tomada::client::answer(status, body),
            Err(WaitError::Ended(e)) => Err(e),
            Err(WaitError::Fault(fault)) => {
                endpoint.unregister(id);
                // (The instance's drop is no caller's call: the objects still held
                // are told that its `Drop` ran late.)
                let late = (target == 0 && method == DROP_INSTANCE).then_some("the plugin instance's `Drop`");
                Err(match self.end_as(connection, fault, false, late) {
                    // The deadline this call had (a scope's, maybe), not the plugin's.
                    CallError::TimedOut { .. } => CallError::TimedOut { deadline: given },
                    other => other,
                })
            }
        })
    }

    /// Refuses arguments over the frame limit (the plugin's process is fine and stays).
    fn fits(&self, args: &[u8]) -> Result<(), CallError> {
        self.fits_len(args.len())
    }

    /// Refuses `len` bytes of arguments over the frame limit.
    fn fits_len(&self, len: usize) -> Result<(), CallError> {
        if len + endpoint::REQUEST_HEAD + frame::HEADER_REST > self.options.max_frame {
            return Err(CallError::Channel {
                message: format!(
                    "the arguments take {len} bytes, over the limit of {} bytes a call (`Isolation::max_frame`)",
                    self.options.max_frame
                ),
            });
        }
        Ok(())
    }
}

/// The method number, on the plugin's instance (target 0), that drops the instance
/// and answers once it is dropped (see [`Isolated::drop_instance`]); no contract
/// method has it (the largest, `CANCEL_METHOD`, is `u32::MAX`).
pub(crate) const DROP_INSTANCE: u32 = u32::MAX - 1;

/// The method number, on the plugin's instance (target 0), that has the child start
/// its lanes (see [`Isolated::start_lanes`]): it answers with one byte, how many it
/// serves. No contract method has it.
pub(crate) const START_LANES: u32 = u32::MAX - 2;

impl Isolated {
    /// Drops the plugin's instance in its process (its handle is gone), if one runs.
    ///
    /// This waits until the instance is dropped, serving what its `Drop` calls
    /// meanwhile, so that what it let go of is let go of here, before `drop(Plugin)`
    /// returns — as in-process, where the instance drops with its handle: the host
    /// objects it held (a kept `Box<dyn Host>`) are released in order, not whenever
    /// the host next reads the channel, and what its `Drop` does (a file flushed,
    /// state saved) is done. (Bounded by the plugin's call deadline, past which the
    /// process is killed like any hung call's.) If nothing else keeps the process
    /// (no object it made is still held), it must take the request within
    /// [`END_GRACE`] (else it is killed then: nothing else waits for it), and it is
    /// ended once the instance is gone.
    pub(crate) fn drop_instance(&self) {
        let connection = self.lock().connection.clone();
        let Some(connection) = connection else { return };
        if connection.endpoint.flight().ended.is_some() {
            return;
        }
        // The `Plugin`'s reference and this one: nothing else keeps the process, and
        // no other thread's call can fill its rings. One that takes nothing for
        // `END_GRACE` is ended then, without waiting for the call deadline.
        let alone = Arc::strong_count(&self.arc()) <= 2;
        let send_by = alone.then(|| Instant::now() + END_GRACE);
        // Its answer says nothing (a failure has ended the process, and its objects).
        // (The plugin's own deadline: a caller's scope, maybe spent, is not for this.)
        let _ = deadline::unscoped(|| {
            self.call_on_within(&connection, 0, DROP_INSTANCE, &mut Vec::new(), &[], false, send_by)
        });
        if alone || Arc::strong_count(&self.arc()) <= 2 {
            // The process ends now, as the last reference's drop would end it: the
            // reader of the main rings may hold a reference for a moment (it serves
            // what it read), and the end (the host's objects the plugin held dropped)
            // would then come on that thread, after this drop has returned.
            self.end_process();
        }
    }
}

impl Channel for Isolated {
    fn call(&self, method: u32, mut args: Vec<u8>) -> Result<Vec<u8>, CallError> {
        self.fits(&args)?;
        // A connection that another call is ending is replaced: this call was not sent.
        loop {
            let connection = self.connection()?;
            match self.call_on(&connection, 0, method, &mut args) {
                Ok(result) => return result,
                Err(_) => std::thread::yield_now(),
            }
        }
    }

    /// The answer's bytes are read without their length, straight into the buffer
    /// that becomes the caller's `String` or `Vec<u8>` (the call's own arguments
    /// buffer, reused): nothing is moved after they arrive.
    fn call_bytes(&self, method: u32, mut args: Vec<u8>) -> Result<Vec<u8>, CallError> {
        self.fits(&args)?;
        loop {
            let connection = self.connection()?;
            match self.call_on_for(&connection, 0, method, &mut args, &[], true) {
                Ok(result) => return result,
                Err(_) => std::thread::yield_now(),
            }
        }
    }

    /// The gathered ranges go out from where they lie, in the same frame as the rest
    /// of the arguments: straight from the caller's memory into the channel.
    fn call_gathered(
        &self,
        method: u32,
        mut args: Vec<u8>,
        gathered: &[tomada::client::Gathered<'_>],
        bytes: bool,
    ) -> Result<Vec<u8>, CallError> {
        // (In order and within the buffer, as `remote_call` makes them; a channel
        // must not panic on what a caller gives it all the same.)
        if gathered.windows(2).any(|w| w[0].at > w[1].at) || gathered.last().is_some_and(|g| g.at > args.len()) {
            return Err(CallError::Channel { message: "gathered arguments out of order".to_owned() });
        }
        self.fits_len(args.len() + gathered.iter().map(|g| g.bytes.len()).sum::<usize>())?;
        loop {
            let connection = self.connection()?;
            match self.call_on_for(&connection, 0, method, &mut args, gathered, bytes) {
                Ok(result) => return result,
                Err(_) => std::thread::yield_now(),
            }
        }
    }

    /// One of a few buffers kept by this plugin's handle (see `buffers`): a large
    /// call's arguments, and the answer read into the same buffer, land in pages
    /// already in use.
    fn lend(&self) -> Vec<u8> {
        self.buffers.lend()
    }

    fn take_back(&self, buffer: Vec<u8>, used: usize) {
        self.buffers.take_back(buffer, used);
    }

    fn peer(&self) -> Option<Arc<dyn tomada::remote::Peer>> {
        self.peer_for_call().ok().flatten()
    }

    /// A process that cannot be (re)started says why, before objects are encoded.
    fn peer_for_call(&self) -> Result<Option<Arc<dyn tomada::remote::Peer>>, CallError> {
        let connection = self.connection()?;
        Ok(Some(Arc::new(HostPeer { isolated: self.arc(), connection })))
    }

    /// An async call multiplexed on the channel like any other: no thread of the host
    /// blocks for it (a reader thread reads while async calls are in flight), the
    /// plugin's callbacks within it are served on the connection's callback thread, and
    /// dropping the future before its answer stops the plugin's future (a `Cancel`).
    fn call_async(
        self: Arc<Self>,
        method: u32,
        args: Vec<u8>,
    ) -> tomada::BoxFuture<'static, Result<Vec<u8>, CallError>> {
        // The deadline of the scope the call is made in, not of where it is polled.
        let deadline = deadline::for_call(self.options.deadline);
        Box::pin(AsyncCall { isolated: self, state: AsyncState::Unsent(method, args), deadline })
    }
}

/// An async call of an isolated plugin (see [`Isolated::call_async`]).
struct AsyncCall {
    isolated: Arc<Isolated>,
    state: AsyncState,
    /// Its deadline, and the time it was given.
    deadline: (Instant, Duration),
}

enum AsyncState {
    Unsent(u32, Vec<u8>),
    Sent(Arc<Connection>, u64),
    Done,
}

impl std::future::Future for AsyncCall {
    type Output = Result<Vec<u8>, CallError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            match &mut this.state {
                AsyncState::Unsent(method, args) => {
                    let (method, args) = (*method, std::mem::take(args));
                    this.state = AsyncState::Done;
                    this.isolated.fits(&args)?;
                    let (deadline, given) = this.deadline;
                    if deadline <= Instant::now() {
                        return Poll::Ready(Err(CallError::TimedOut { deadline: given }));
                    }
                    let connection = this.isolated.connection()?;
                    let Some((id, others)) = connection.endpoint.register_async(cx.waker().clone(), deadline) else {
                        // Another call is ending this process: the next one takes it.
                        this.state = AsyncState::Unsent(method, args);
                        std::thread::yield_now();
                        continue;
                    };
                    // Made within nothing of the plugin's: its callbacks go to the
                    // callback thread, as no thread of the host waits here.
                    if let Err(e) = connection.endpoint.send_within(id, 0, 0, method, &args, Some(deadline)) {
                        connection.endpoint.unregister(id);
                        let fault = if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
                        {
                            ReadError::TimedOut
                        } else {
                            ReadError::Eof
                        };
                        return Poll::Ready(Err(this.isolated.end(&connection, fault)));
                    }
                    connection.nudge_for(others);
                    this.isolated.read_for_async(&connection);
                    this.state = AsyncState::Sent(connection, id);
                }
                AsyncState::Sent(connection, id) => {
                    let Some(answer) = connection.endpoint.poll_async(*id, cx.waker()) else {
                        return Poll::Pending;
                    };
                    this.state = AsyncState::Done;
                    return Poll::Ready(match answer {
                        Ok((status, body)) => tomada::client::answer(status, body),
                        // The deadline this call had (a scope's, maybe), not the plugin's.
                        Err(CallError::TimedOut { .. }) => Err(CallError::TimedOut { deadline: this.deadline.1 }),
                        Err(e) => Err(e),
                    });
                }
                AsyncState::Done => {
                    return Poll::Ready(Err(CallError::Channel {
                        message: "an async call polled again after it completed".to_owned(),
                    }));
                }
            }
        }
    }
}

impl Drop for AsyncCall {
    fn drop(&mut self) {
        if let AsyncState::Sent(connection, id) = &self.state {
            connection.endpoint.cancel(*id);
            // The thread serving the call is busy with it: another must read the cancel.
            connection.nudge();
        }
    }
}

impl Isolated {
    /// Starts the lanes of a new process now if the options ask for them from the
    /// start ([`Isolation::lanes`] given); by default they start when calls first
    /// overlap (see [`Isolated::start_lanes`]).
    fn lanes_at_start(&self, connection: &Arc<Connection>) {
        #[cfg(unix)]
        if self.options.lanes.is_some() {
            self.start_lanes(connection);
        }
        #[cfg(not(unix))]
        let _ = connection;
    }

    /// Has the child of `connection` start its lanes, once: it maps the lanes passed
    /// at its start and starts a thread for each, and answers how many it serves;
    /// the host maps those and blocking calls take them from then on. Until then
    /// (and for good if the child serves none, or the request fails: the next call
    /// meets what failed) calls take the main rings. Lanes cost a start and memory
    /// only once calls overlap: a process whose calls never do has none running.
    #[cfg(unix)]
    fn start_lanes(&self, connection: &Arc<Connection>) {
        if connection.lanes_asked.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut dormant = std::mem::take(&mut *Endpoint::lock(&connection.dormant));
        if dormant.is_empty() {
            return;
        }
        // (Within the plugin's own deadline, not a caller's scope: a request past its
        // deadline ends the process.)
        let answer = deadline::unscoped(|| self.call_on(connection, 0, START_LANES, &mut Vec::new()));
        let served = match answer {
            Ok(Ok(body)) => body.first().map_or(0, |&n| usize::from(n)),
            _ => 0,
        };
        // (The lanes past those it serves are closed.)
        dormant.truncate(served);
        let crowd = &connection.crowd;
        let lanes = dormant
            .into_iter()
            .enumerate()
            .map(|(i, link)| Lane {
                endpoint: Endpoint::new(link, true, Waiter::new(SPIN), self.options.max_frame)
                    .first_id((i as u64 + 1) << 48)
                    .crowd({
                        let crowd = Arc::clone(crowd);
                        // (This lane's own call counted.)
                        move || crowd.load(Ordering::Relaxed) <= 1
                    }),
                busy: AtomicBool::new(false),
            })
            .collect();
        let _ = connection.lanes.set(lanes);
        // Ending meanwhile (see `take_ending`, which marks the lanes it sees): no new
        // call takes these either.
        if connection.endpoint.flight().ending {
            for lane in connection.lanes.get().into_iter().flatten() {
                lane.endpoint.flight().ending = true;
            }
        }
    }

    /// Makes sure a thread reads the main rings of `connection` from now on, as long
    /// as it lives: calls went through its lanes, and what the plugin sends through
    /// the main rings meanwhile (its own threads' callbacks, log records and releases)
    /// would otherwise wait for a call through them.
    fn watch_main(&self, connection: &Arc<Connection>) {
        if !connection.watching.swap(true, Ordering::SeqCst) {
            self.read_for_async(connection);
        }
    }

    /// Makes sure a thread reads `connection` while async calls are in flight on it
    /// (sync callers read for themselves; an async call's future cannot block), and
    /// for good once calls went through lanes (see [`Isolated::watch_main`]). It
    /// holds the plugin's handle weakly: dropping the `Plugin` ends the process, and
    /// with it this thread.
    fn read_for_async(&self, connection: &Arc<Connection>) {
        if connection.async_reader.swap(true, Ordering::SeqCst) {
            return;
        }
        let (isolated, reader) = (self.me.clone(), Arc::clone(connection));
        let name = format!("tomada-async-{}", self.name);
        let started = std::thread::Builder::new().name(name).spawn(move || {
            let _own = crate::unload::own_thread();
            let connection = reader;
            *Endpoint::lock(&connection.watcher) = Some(std::thread::current());
            let needed = |asyncs: bool| asyncs || connection.watching.load(Ordering::SeqCst);
            loop {
                let asyncs = connection.endpoint.awaits_async();
                // Blocking calls waiting on the main rings read for themselves (and for
                // what else comes there): holding the reading, this thread would only
                // hand their answers over. Not while every one of them is serving a
                // callback (the callback may wait for a frame only a reader brings).
                // Woken when the last of them is answered (`MainHold`) or one starts
                // serving (`HostHandler::serve`); the tick is a backstop.
                if !asyncs && connection.watching.load(Ordering::SeqCst) && connection.endpoint.blocking_reader() {
                    std::thread::park_timeout(WATCH_TICK);
                    if connection.endpoint.flight().ended.is_some() {
                        return;
                    }
                    continue;
                }
                if !needed(asyncs) {
                    connection.async_reader.store(false, Ordering::SeqCst);
                    // A call registered meanwhile found the flag still set: take it up.
                    if needed(connection.endpoint.awaits_async())
                        && !connection.async_reader.swap(true, Ordering::SeqCst)
                    {
                        continue;
                    }
                    return;
                }
                // (Only async calls have deadlines for this thread to look at.)
                let tick = if asyncs { ASYNC_TICK } else { WATCH_TICK };
                let read = {
                    let mut reading = Endpoint::lock(&connection.endpoint.reading);
                    connection.endpoint.read_one(&mut reading, tick)
                };
                connection.endpoint.pass_reading_on(0);
                let Some(isolated) = isolated.upgrade() else { return };
                let handler =
                    HostHandler { isolated: Arc::clone(&isolated), connection: Arc::clone(&connection), lane: None };
                match read {
                    Ok(Some(endpoint::Read::Incoming(incoming))) => handler.incoming(incoming),
                    Ok(_) => {
                        let late = CallError::TimedOut { deadline: isolated.options.deadline };
                        if connection.endpoint.fail_overdue(Instant::now(), &late) {
                            // Hung, as a blocking call past its deadline: the process goes.
                            isolated.end(&connection, ReadError::TimedOut);
                            return;
                        }
                        if connection.endpoint.flight().ended.is_some() {
                            return;
                        }
                    }
                    Err(fault) => {
                        isolated.end_as(&connection, fault, true, None);
                        return;
                    }
                }
            }
        });
        if let Err(e) = started {
            connection.async_reader.store(false, Ordering::SeqCst);
            if connection.endpoint.awaits_async() {
                // Nobody would read the async calls' answers: the process is ended as
                // when its channel fails (and counted), so the next call starts another
                // rather than finding this one closed and trying it again.
                let _ = self.end(connection, ReadError::Io(e));
            } else {
                // Only the watch of the main rings, for lanes: calls through lanes go
                // on without it; what the plugin's own threads send through the main
                // rings waits for the next call there. The next call through a lane
                // tries again.
                connection.watching.store(false, Ordering::SeqCst);
                tracing::warn!(plugin = %self.name, "cannot start a thread to read the main rings: {e}");
            }
        }
    }
}

/// The host's side of the objects crossing to one process of an isolated plugin.
struct HostPeer {
    isolated: Arc<Isolated>,
    connection: Arc<Connection>,
}

impl tomada::remote::Peer for HostPeer {
    fn export(&self, object: tomada::remote::Exported) -> u64 {
        self.connection.objects.insert(object)
    }
    fn revoke(&self, id: u64) {
        self.connection.objects.revoke(id);
    }
    fn call(&self, id: u64, method: u32, mut args: Vec<u8>) -> Result<Vec<u8>, CallError> {
        self.isolated.fits(&args)?;
        match self.isolated.call_on(&self.connection, id, method, &mut args) {
            Ok(result) => result,
            // Ended meanwhile: the object was the ended process's.
            Err(_) => Err(self.connection.endpoint.flight().ended.clone().unwrap_or_else(|| crashed(None, None))),
        }
    }
    fn release(&self, id: u64) {
        if self.connection.endpoint.flight().ended.is_none() {
            self.connection.endpoint.release(id);
        }
    }
}

/// What a host thread waiting for a call does with the plugin's requests.
struct HostHandler {
    isolated: Arc<Isolated>,
    connection: Arc<Connection>,
    /// The lane the call went through (`None`: the main rings).
    lane: Option<usize>,
}

impl Handler for HostHandler {
    fn serve(&self, request: Request) -> (u8, tomada::ffi::RVec) {
        // A thread waiting on the main rings that serves a callback reads nothing
        // meanwhile: the thread that watches them (once lanes were used) reads instead.
        if self.lane.is_none()
            && self.connection.watching.load(Ordering::SeqCst)
            && let Some(watcher) = Endpoint::lock(&self.connection.watcher).as_ref()
        {
            watcher.unpark();
        }
        // Served under a lease: a lent object's call cannot return before this does.
        let Some(object) = self.connection.objects.get(request.target) else {
            return endpoint::no_object(request.target);
        };
        let peer: Arc<dyn tomada::remote::Peer> =
            Arc::new(HostPeer { isolated: Arc::clone(&self.isolated), connection: Arc::clone(&self.connection) });
        let (status, body) = tomada::remote::with_peer(&peer, || object.serve(request.method, request.args()));
        (status.0, body)
    }

    fn incoming(&self, incoming: Incoming) {
        match incoming {
            // (A plugin's own threads call back through the main rings: a request on
            // a lane is made within the call there, or it is a broken peer's.)
            Incoming::Request(request) => match self.lane {
                Some(lane) => {
                    let message = b"a request outside any call, through a lane";
                    let _ = self.connection.lane(lane).endpoint.answer(request.id, Status::MALFORMED.0, message);
                }
                None => self.callback_outside_calls(request),
            },
            Incoming::Release(id) => self.connection.objects.release(id),
            Incoming::Log(record) => crate::logs::deliver_encoded(&self.connection.name, &record),
            // (Only the plugin's side is sent cancels.)
            Incoming::Cancel(_) => {}
        }
    }
}

impl HostHandler {
    /// A callback made outside any call of the host (from a plugin's own thread): served
    /// on the connection's callback thread, in order.
    fn callback_outside_calls(&self, request: Request) {
        let mut sender = self.connection.callbacks.lock().unwrap_or_else(|p| p.into_inner());
        if sender.is_none() {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Request>(CALLBACKS_QUEUED);
            let (isolated, connection) = (Arc::downgrade(&self.isolated), Arc::clone(&self.connection));
            // The thread ends when the connection does (`close` and `kill` drop the
            // sender); it holds the plugin's handle weakly, so dropping the `Plugin`
            // still ends the process.
            let started = std::thread::Builder::new().name(format!("tomada-callbacks-{}", self.connection.name)).spawn(
                move || {
                    let _own = crate::unload::own_thread();
                    while let Ok(request) = rx.recv() {
                        match isolated.upgrade() {
                            Some(isolated) => {
                                let handler = HostHandler { isolated, connection: Arc::clone(&connection), lane: None };
                                connection.endpoint.serve(request, &handler);
                            }
                            None => {
                                let _ = connection.endpoint.answer(
                                    request.id,
                                    Status::MALFORMED.0,
                                    b"the plugin was dropped",
                                );
                            }
                        }
                    }
                },
            );
            if started.is_err() {
                let _ = self.connection.endpoint.answer(
                    request.id,
                    Status::MALFORMED.0,
                    b"the host cannot start a thread to serve this callback",
                );
                return;
            }
            *sender = Some(tx);
        }
        if let Some(tx) = sender.as_ref() {
            // A plugin flooding the host with callbacks is answered, not queued without
            // bound.
            if let Err(std::sync::mpsc::TrySendError::Full(request)) = tx.try_send(request) {
                let _ = self.connection.endpoint.answer(
                    request.id,
                    Status::MALFORMED.0,
                    b"too many callbacks made outside the host's calls are waiting",
                );
            }
        }
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        self.end_process();
    }
}

impl Isolated {
    /// Ends the plugin's process, if one runs, and drops the host's objects it held.
    fn end_process(&self) {
        if let Some(connection) = self.lock().connection.take() {
            connection.kill();
            // The host's objects the plugin held go now, not when the last thread
            // that holds the connection lets go of it (the reader of the main rings,
            // once lanes were used, looks at its channel's end up to `WATCH_TICK`
            // later): woken, it sees the end at once.
            connection.objects.clear();
            if let Some(watcher) = Endpoint::lock(&connection.watcher).as_ref() {
                watcher.unpark();
            }
        }
    }
}

/// Starts an isolated plugin for `inspection`'s chosen export (already checked by
/// the caller), whose constructor receives `config`.
pub(crate) fn start(
    inspection: &Inspection,
    file: &PluginFile,
    config: &[u8],
    options: &Isolation,
) -> Result<Arc<Isolated>, LoadError> {
    Isolated::start(inspection, file, config, options.clone())
}

//! A spare runner ([`Isolation::spare_runner`]): a runner process started ahead of
//! the next start of a plugin, so that start does not wait for the runner's `exec`
//! (most of a start: see docs/benchmarks.md, "Spawn, round 4").
//!
//! A spare is started from the spawner thread (so its parent-death signal means the
//! host's death) with everything a runner gets at `exec` that does not depend on the
//! plugin: the runner executable, the environment (the host's [`Isolation::env`] and
//! its own variables), a fresh channel (socket, nudge pipe, shared memory). It says
//! hello and waits, unsandboxed but idle: it holds nothing of any plugin. The next
//! start with the same [`Key`] takes it, sets its limits, reads and checks its hello,
//! sends it the plugin file over the socket, and goes on with the load request as for
//! a runner started then (containment, sandbox, the plugin: all after it). A spare
//! that died, or whose hello is not right, is dropped and a runner started as usual:
//! never an error of its own.
//!
//! A spare inherits the host's current directory of when it was started (a relative
//! runner path was resolved against it): a start from another directory does not take
//! it (it is killed, and the next spare started there).
//!
//! Until it is taken its output goes to the default output ([`Isolation::on_output`]
//! not set), under the name "spare runner": it is no plugin's yet.
//!
//! One spare per key at most; it is killed (and reaped) when the last plugin whose
//! options asked for it is dropped, and dies with the host otherwise (parent-death
//! signal, and the socket's end).

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::ends::{self, Ends};
use super::launch::{self, Process};
use super::options::Isolation;
use super::{protocol, spawner, steps};
use crate::LaunchError;

/// What a spare was started with: a start with other parameters does not take it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Key {
    /// The runner executable.
    pub(crate) exe: PathBuf,
    /// The plugin's environment ([`Isolation::env`]).
    env: Vec<(OsString, OsString)>,
    /// The largest frame (in the runner's environment).
    max_frame: usize,
    /// Frames on the socket alone (no shared memory passed).
    socket_only: bool,
    /// The lanes passed (see [`Isolation::lanes`]).
    lanes: usize,
}

impl Key {
    /// The key of a runner started with `options` from `exe`.
    pub(crate) fn new(exe: PathBuf, options: &Isolation) -> Key {
        Key {
            exe,
            env: options.env.clone(),
            max_frame: options.max_frame,
            socket_only: options.socket_only,
            lanes: options.lane_count(),
        }
    }
}

/// A started spare: its process and the host's ends of its channel. Killed and reaped
/// when dropped, unless taken.
pub(crate) struct Spare {
    process: Option<Process>,
    ends: Option<Ends>,
    /// The host's current directory when it was started, which it inherited (and a
    /// relative runner path was resolved against): a start from another one does not
    /// take it.
    cwd: PathBuf,
}

impl Drop for Spare {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
    }
}

/// The spares by key, with how many plugins use each key.
struct Entry {
    key: Key,
    /// Plugins alive whose options ask for a spare with this key.
    users: usize,
    spare: Option<Spare>,
    /// A spare is being started (one at a time).
    starting: bool,
}

static POOL: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
/// Signalled when a spare's start ends (see `Entry::starting`).
static STARTED: Condvar = Condvar::new();

fn pool() -> MutexGuard<'static, Vec<Entry>> {
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

fn entry<'a>(pool: &'a mut [Entry], key: &Key) -> Option<&'a mut Entry> {
    pool.iter_mut().find(|e| &e.key == key)
}

/// A plugin's use of spares with its key: while one is alive, a spare is kept ready
/// for the next start with that key.
pub(crate) struct Use {
    key: Key,
}

impl Use {
    /// Counts one more plugin using spares with `key`.
    pub(crate) fn new(key: Key) -> Use {
        let mut pool = pool();
        match entry(&mut pool, &key) {
            Some(e) => e.users += 1,
            None => pool.push(Entry { key: key.clone(), users: 1, spare: None, starting: false }),
        }
        Use { key }
    }

    /// The key.
    pub(crate) fn key(&self) -> &Key {
        &self.key
    }

    /// Takes the ready spare, if there is one, for the plugin `name` started with
    /// `options`, whose file is `file`: its limits set, its hello read and checked,
    /// the plugin file sent. `None` (the spare, if any, killed) if there is none or it
    /// cannot be used: the caller starts a runner as usual. A spare being started is
    /// waited for: its start is on the spawner thread, where a new runner's would wait
    /// behind it anyway.
    pub(crate) fn take(&self, options: &Isolation, name: &str, file: &std::fs::File) -> Option<(Process, Ends)> {
        let spare = {
            let mut pool = pool();
            // (Bounded: a start that never ends must not hold up this one for good.)
            let until = Instant::now() + options.startup;
            while entry(&mut pool, &self.key)?.starting {
                let left = until.checked_duration_since(Instant::now())?;
                pool = STARTED.wait_timeout(pool, left).unwrap_or_else(|p| p.into_inner()).0;
            }
            entry(&mut pool, &self.key)?.spare.take()?
        };
        let (process, ends) = (spare.process.as_ref()?, spare.ends.as_ref()?);
        if !process.alive() || std::env::current_dir().ok()? != spare.cwd {
            return None;
        }
        process.limit(options).ok()?;
        // (Its hello is in the socket already, unless it is still starting.)
        let deadline = Some(Instant::now() + options.startup);
        protocol::read_hello(&ends.socket, &self.key.exe, deadline, options.max_frame).ok()?;
        protocol::send_plugin_file(&ends.socket, file.as_fd()).ok()?;
        // Its output is the plugin's from now on (and only from now on: not the lines
        // of before, in the plugin's crash reports).
        process.adopt(&options.output, name);
        steps::mark("host: spare taken, plugin file sent");
        let mut spare = spare;
        Some((spare.process.take()?, spare.ends.take()?))
    }

    /// Starts a spare in the background (on the spawner thread) if none is ready or
    /// starting; its output goes to the default output (no plugin's) until it is
    /// taken. A spare that cannot be started is not an error: the next start starts a
    /// runner as usual.
    pub(crate) fn replenish(&self) {
        {
            let mut pool = pool();
            let Some(e) = entry(&mut pool, &self.key) else { return };
            if e.spare.is_some() || e.starting {
                return;
            }
            e.starting = true;
        }
        // Its end is kept when `starting` drops: also if the start panics, or the job
        // never runs (not sent: the job, and `starting` with it, is dropped already).
        let starting = Starting { key: self.key.clone(), spare: None };
        let _sent = spawner::detach(move || {
            let mut starting = starting;
            starting.spare = start(&starting.key).ok();
            drop(starting);
        });
    }
}

/// A spare's start in the background: when dropped (the start over, or panicked, or
/// never run), the spare (if any) is kept for its key or killed, and its key no
/// longer `starting`.
struct Starting {
    key: Key,
    spare: Option<Spare>,
}

impl Drop for Starting {
    fn drop(&mut self) {
        let started = self.spare.take();
        let mut pool = pool();
        let unused = match entry(&mut pool, &self.key) {
            Some(e) => {
                e.starting = false;
                match started {
                    Some(spare) if e.users > 0 && e.spare.is_none() => {
                        e.spare = Some(spare);
                        None
                    }
                    other => other,
                }
            }
            None => started,
        };
        pool.retain(|e| e.users > 0 || e.starting);
        // (Killed without the lock held.)
        drop(pool);
        STARTED.notify_all();
        drop(unused);
    }
}

impl Drop for Use {
    fn drop(&mut self) {
        let mut pool = pool();
        let Some(e) = entry(&mut pool, &self.key) else { return };
        e.users -= 1;
        let spare = if e.users == 0 { e.spare.take() } else { None };
        pool.retain(|e| e.users > 0 || e.starting);
        drop(pool);
        // The last plugin with this key is gone: so is its spare (killed and reaped).
        drop(spare);
    }
}

/// Starts a spare runner with `key` (on the spawner thread), its output to the
/// default output until it is taken.
fn start(key: &Key) -> Result<Spare, LaunchError> {
    let (ends, (pass, last_fd)) = ends::make(key.socket_only, key.lanes, None)?;
    // Only what the runner gets at `exec`: the limits are set when it is taken.
    let options = Isolation { env: key.env.clone(), max_frame: key.max_frame, ..Isolation::default() };
    // The directory it inherits (read before and after: a change meanwhile, whichever
    // it got, makes it a spare no start takes).
    let cwd = std::env::current_dir().map_err(|source| LaunchError::Start { runner: key.exe.clone(), source })?;
    let process = launch::start(launch::Launch {
        exe: &key.exe,
        options: &options,
        name: "spare runner",
        env: ends::child_env(key.max_frame, key.socket_only, key.lanes, true),
        pass,
        last_fd,
    })?;
    let mut spare = Spare { process: Some(process), ends: Some(ends), cwd };
    if std::env::current_dir().ok().as_ref() != Some(&spare.cwd) {
        spare.cwd = PathBuf::new();
    }
    Ok(spare)
}

//! Isolation where it is not implemented yet (Windows): the same API as on Unix, so
//! a host compiles unchanged everywhere, but starting an isolated plugin fails with
//! [`LoadError::IsolationUnsupported`](crate::LoadError::IsolationUnsupported).
//!
//! The options are accepted and ignored; [`serve_if_runner`] returns at once (no
//! process is ever started as a runner here). Keep the builder's methods in step
//! with `isolate/mod.rs`: a host written for Unix must compile here.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tomada::CallError;
use tomada::client::Channel;

use crate::file::PluginFile;
use crate::{Inspection, LoadError};

// The sandbox's options are plain data; what applies them is Linux-only.
#[allow(dead_code)]
mod sandbox;
pub use sandbox::Sandbox;

/// Where a plugin runs.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Default)]
pub enum Mode {
    /// In the host's process: fastest; a crash of the plugin is a crash of the host.
    #[default]
    InProcess,
    /// In a child process: not supported on this platform yet; loading fails with
    /// [`LoadError::IsolationUnsupported`](crate::LoadError::IsolationUnsupported).
    Isolated(Isolation),
}

/// Which executable the child process runs.
#[derive(Debug, Clone, Default)]
pub enum Runner {
    /// The host's own executable, which calls [`serve_if_runner`] first in `main`.
    #[default]
    CurrentExe,
    /// Another executable that calls [`serve_if_runner`] (e.g. `tomada-runner`).
    Path(PathBuf),
}

/// Receives each line a plugin prints: plugin name, which stream, the line.
pub type OutputFn = Arc<dyn Fn(&str, Stream, &str) + Send + Sync>;

/// Which of a plugin's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Its standard output.
    Stdout,
    /// Its standard error.
    Stderr,
}

/// How an isolated plugin would run. On this platform the options are accepted and
/// ignored: isolation is not supported here yet.
#[derive(Clone, Default)]
pub struct Isolation {
    _private: (),
}

impl fmt::Debug for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Isolation").finish_non_exhaustive()
    }
}

impl Isolation {
    /// Isolation options (ignored on this platform).
    pub fn new() -> Self {
        Self::default()
    }
    /// The longest a call may take (ignored on this platform).
    pub fn deadline(self, _deadline: Duration) -> Self {
        self
    }
    /// The longest the process may take to start (ignored on this platform).
    pub fn startup(self, _startup: Duration) -> Self {
        self
    }
    /// Limits the process's address space (ignored on this platform).
    pub fn memory_limit(self, _bytes: u64) -> Self {
        self
    }
    /// Limits the process's CPU time (ignored on this platform).
    pub fn cpu_seconds(self, _seconds: u64) -> Self {
        self
    }
    /// Limits the process's open files (ignored on this platform).
    pub fn open_files(self, _count: u64) -> Self {
        self
    }
    /// The crash budget before quarantine (ignored on this platform).
    pub fn crash_budget(self, _crashes: u32, _window: Duration) -> Self {
        self
    }
    /// Which executable runs the plugin (ignored on this platform).
    pub fn runner(self, _runner: Runner) -> Self {
        self
    }
    /// Sandboxes the plugin's process (ignored on this platform).
    pub fn sandbox(self, _sandbox: Sandbox) -> Self {
        self
    }
    /// Sets an environment variable for the plugin's process (ignored on this platform).
    pub fn env(self, _key: impl Into<std::ffi::OsString>, _value: impl Into<std::ffi::OsString>) -> Self {
        self
    }
    /// The largest message either side may send (ignored on this platform).
    pub fn max_frame(self, _bytes: usize) -> Self {
        self
    }
    /// Where the plugin's output lines go (ignored on this platform).
    pub fn on_output(self, _output: impl Fn(&str, Stream, &str) + Send + Sync + 'static) -> Self {
        self
    }
}

/// On Unix, serves a plugin if this process was started as a runner. Here no
/// process is started as a runner, so it returns at once.
pub fn serve_if_runner() {}

/// An isolated plugin: none can exist on this platform.
pub(crate) enum Isolated {}

impl Isolated {
    pub(crate) fn pid(&self) -> Option<u32> {
        match *self {}
    }
}

impl Channel for Isolated {
    fn call(&self, _method: u32, _args: Vec<u8>) -> Result<Vec<u8>, CallError> {
        match *self {}
    }
}

/// Refuses: isolation is not supported on this platform yet.
pub(crate) fn start(inspection: &Inspection, _: &PluginFile, _: &Isolation) -> Result<Arc<Isolated>, LoadError> {
    Err(LoadError::IsolationUnsupported { path: inspection.path.clone(), platform: std::env::consts::OS })
}

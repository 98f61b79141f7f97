//! Isolation where it is not implemented (neither Unix nor Windows): the same API, so
//! a host compiles unchanged everywhere, but starting an isolated plugin fails with
//! [`LoadError::IsolationUnsupported`](crate::LoadError::IsolationUnsupported).
//!
//! The options are accepted and ignored; [`serve_if_runner`] returns at once (no
//! process is ever started as a runner here). The options themselves are the Unix
//! ones (`options.rs`, shared), so a host written for Unix compiles here.

use std::sync::Arc;

use tomada::__private::client::Channel;
use tomada::CallError;

use crate::file::PluginFile;
use crate::{Inspection, LoadError};

// The sandbox's options are plain data; what applies them is Linux-only.
#[allow(dead_code)]
mod sandbox;
pub use sandbox::Sandbox;

#[path = "options.rs"]
mod options;
pub use options::{Isolation, Mode, OutputFn, Runner, Stream};

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
pub(crate) fn start(
    inspection: &Inspection,
    _: &PluginFile,
    _: &[u8],
    _: &Isolation,
) -> Result<Arc<Isolated>, LoadError> {
    Err(LoadError::IsolationUnsupported { path: inspection.path.clone(), platform: std::env::consts::OS })
}

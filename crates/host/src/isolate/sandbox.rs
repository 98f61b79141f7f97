//! Sandboxing an isolated plugin's process (Linux).

use std::path::PathBuf;

/// What an isolated plugin's process may do. Opt-in per plugin, Linux only.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    pub(crate) read_only: Vec<PathBuf>,
    pub(crate) writable: Vec<PathBuf>,
    pub(crate) deny_network: bool,
    pub(crate) deny_exec: bool,
}

pub(crate) fn before_load(_sandbox: &Sandbox) -> Result<(), String> {
    Err("sandboxing is not available in this build".to_owned())
}

pub(crate) fn after_load(_sandbox: &Sandbox) -> Result<(), String> {
    Err("sandboxing is not available in this build".to_owned())
}

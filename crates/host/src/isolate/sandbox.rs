//! Sandboxing an isolated plugin's process (Linux), on top of its resource limits.
//!
//! In the child, in this order:
//! 1. *before the plugin is loaded*, so its initialisers already run inside:
//!    Landlock makes the whole filesystem read-only except the paths granted with
//!    [`Sandbox::allow_write`];
//! 2. *after it is loaded* (loading needs `mmap` of the file and the like): a seccomp
//!    filter refuses, with `EPERM`, internet sockets ([`Sandbox::deny_network`]) and
//!    `execve` ([`Sandbox::deny_exec`]).
//!
//! A kernel without Landlock or seccomp makes the plugin fail to load with an error
//! saying which is missing: tomada never runs a plugin it was asked to sandbox
//! without the sandbox.

use std::path::PathBuf;

/// What an isolated plugin's process may not do. Opt-in per plugin; Linux only.
///
/// ```
/// use tomada_host::isolate::Sandbox;
/// let sandbox = Sandbox::new().read_only_filesystem().allow_write("/tmp/plugin-cache").deny_network().deny_exec();
/// let everything = Sandbox::strict(); // read-only filesystem, no network, no exec
/// ```
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    pub(crate) read_only: bool,
    pub(crate) writable: Vec<PathBuf>,
    pub(crate) deny_network: bool,
    pub(crate) deny_exec: bool,
}

impl Sandbox {
    /// A sandbox that restricts nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything restricted: a read-only filesystem, no network, no exec.
    pub fn strict() -> Self {
        Self::new().read_only_filesystem().deny_network().deny_exec()
    }

    /// Makes the whole filesystem read-only for the plugin (Landlock), except the
    /// paths given to [`Sandbox::allow_write`].
    pub fn read_only_filesystem(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Lets the plugin write under `path` (it must exist); implies
    /// [`Sandbox::read_only_filesystem`] for everything else.
    pub fn allow_write(mut self, path: impl Into<PathBuf>) -> Self {
        self.read_only = true;
        self.writable.push(path.into());
        self
    }

    /// Refuses internet sockets (`socket(AF_INET)`, `socket(AF_INET6)`) with `EPERM`.
    pub fn deny_network(mut self) -> Self {
        self.deny_network = true;
        self
    }

    /// Refuses `execve` and `execveat` with `EPERM`.
    pub fn deny_exec(mut self) -> Self {
        self.deny_exec = true;
        self
    }
}

/// Applies what must hold while the plugin loads: the filesystem rules.
#[cfg(target_os = "linux")]
pub(crate) fn before_load(sandbox: &Sandbox) -> Result<(), String> {
    use landlock::{
        ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
        path_beneath_rules,
    };
    if !sandbox.read_only {
        return Ok(());
    }
    let abi = ABI::V1;
    let unavailable = |e: &dyn std::fmt::Display| format!("cannot apply the filesystem sandbox (Landlock): {e}");
    let status = Ruleset::default()
        // Landlock ABI 1 (Linux 5.13) covers reading, writing, creating and removing
        // files; anything less and we refuse rather than pretend.
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi))))
        .and_then(|r| r.add_rules(path_beneath_rules(&sandbox.writable, AccessFs::from_all(abi))))
        .and_then(|r| r.restrict_self())
        .map_err(|e| unavailable(&e))?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(()),
        other => Err(format!(
            "this kernel cannot enforce the filesystem sandbox (Landlock status: {other:?}); \
             Linux 5.13 or later with Landlock enabled (lsm=landlock,...) is needed"
        )),
    }
}

/// Applies what may only hold once the plugin is loaded: the system-call filter.
#[cfg(target_os = "linux")]
pub(crate) fn after_load(sandbox: &Sandbox) -> Result<(), String> {
    use std::collections::BTreeMap;

    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
        TargetArch,
    };
    if !sandbox.deny_network && !sandbox.deny_exec {
        return Ok(());
    }
    let fail = |e: &dyn std::fmt::Display| format!("cannot apply the system-call sandbox (seccomp): {e}");
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    if sandbox.deny_network {
        let family = |f: i32| {
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, f as u64)
                .and_then(|c| SeccompRule::new(vec![c]))
        };
        let inet = [family(libc::AF_INET), family(libc::AF_INET6)]
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(&e))?;
        rules.insert(libc::SYS_socket, inet);
    }
    if sandbox.deny_exec {
        // An empty rule list matches every call.
        rules.insert(libc::SYS_execve, vec![]);
        rules.insert(libc::SYS_execveat, vec![]);
    }
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| fail(&e))?;
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)
        .map_err(|e| fail(&e))?;
    let program: BpfProgram = filter.try_into().map_err(|e: seccompiler::BackendError| fail(&e))?;
    // Every thread, including any the plugin started while loading.
    seccompiler::apply_filter_all_threads(&program).map_err(|e| fail(&e))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn before_load(_: &Sandbox) -> Result<(), String> {
    Err("sandboxing is only available on Linux".to_owned())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn after_load(_: &Sandbox) -> Result<(), String> {
    Ok(())
}

//! # tomada-host — load tomada plugins
//!
//! What a host application depends on. [`load`] opens a plugin for a contract and
//! returns a [`Plugin<dyn Contract>`](Plugin) that calls it:
//!
//! ```no_run
//! use pluginapi::Greeter;
//!
//! let plugin = tomada_host::load::<dyn Greeter>("bin/greeter_v1.so")?;
//! let info = plugin.info();
//! println!("{} v{} (ABI={})", info.name, info.version, plugin.manifest().contract.abi);
//! println!("{}", plugin.greet("Mundo")?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The main types: [`Plugin`] (a loaded plugin, which derefs to the contract's client
//! whose methods return `Result<_, CallError>`), [`Loader`] (export name, configuration,
//! [`TrustPolicy`] and in-process or [`isolate::Isolation`] in one chain), [`LoadError`]
//! (why a file was refused), [`CallError`] (why a call failed), [`Inspection`] and
//! [`Manifest`] (what a file says about itself, read without running it) and
//! [`Handle`] (objects a plugin made).
//!
//! Every refusal is a typed value to match on; this runs as it is:
//!
//! ```
//! #[tomada::contract(abi = 1, name = "demo::Greeter")]
//! pub trait Greeter {
//!     fn greet(&self, name: &str) -> String;
//! }
//!
//! let loader = tomada_host::Loader::new().export("hello").config("lang=pt");
//! match loader.load::<dyn Greeter>("no/such/greeter.so") {
//!     Err(tomada_host::LoadError::NotFound { path }) => {
//!         assert_eq!(path, std::path::Path::new("no/such/greeter.so"))
//!     }
//!     Err(other) => panic!("another refusal: {other}"),
//!     Ok(plugin) => println!("{}", plugin.greet("Mundo")?),
//! }
//! # Ok::<(), tomada_host::CallError>(())
//! ```
//!
//! Loading checks, in this order, and refuses with its own [`LoadError`] for each:
//! the file exists and is a shared library for this machine (whole, not truncated);
//! it carries a tomada descriptor (magic bytes); tomada's boundary version; the
//! contract's name; the contract's ABI number; the contract's layout fingerprint;
//! and that the plugin was built to unwind on panic. All of that is read from the
//! file by [`inspect`] *before* the dynamic loader opens it, so a foreign or
//! incompatible library never runs its initialisers in the host. The loaded library's
//! exported descriptor is then compared with what was read from the file.
//!
//! A [`Plugin`] keeps its library loaded; dropping it drops the plugin instance and
//! unloads the library (the OS may keep it mapped; see [`Plugin`]).
//!
//! [`load_with`] takes an [`isolate::Mode`]: the same plugin, checked the same way,
//! can instead run in a child process ([`isolate`]), behind the same `Plugin<dyn
//! Greeter>`, where a crash, hang or runaway allocation is a [`CallError`] rather than
//! the end of the host. [`inspect`] and [`expectations`] read a file without running
//! it.
//!
//! The repository's `examples/` directory holds hosts to copy, each with its contract
//! and plugin, built and run by `cargo test`: `examples/rich-types`,
//! `examples/host-services` (host services, plugin-made objects, [`plugin_logs`]),
//! `examples/sandboxed` ([`load_with`] and [`isolate::Sandbox`]) and
//! `examples/plugin-dir` (every plugin in a directory).
//! A library may export several plugins ([`Inspection::exports`]): loading takes the
//! one export of the contract asked for, or the one named with [`Loader::export`].
//! [`Loader::config`] hands the plugin's constructor a configuration
//! (`tomada::context()`), in-process and isolated alike.
//! A [`Loader`] takes all of it in one chain — a [`TrustPolicy`], an export name, a
//! configuration and where the plugin runs — and loads: [`load`] and [`load_with`] are
//! its shortcuts.
//!
//! A plugin's `log` records and `tracing` events reach this process's `log` logger and
//! `tracing` subscriber with the target `plugin::<export>` (the export that logged
//! them), every text escaped, the same in-process and isolated (see [`plugin_logs`]).
//!
//! Features: `watch` (on by default) adds [`Reloadable::watch`]: a plugin reloaded
//! by itself when its file is rebuilt, through `notify` and `notify-debouncer-full`
//! (a thread, an inotify watch); a host that only reloads when it decides to
//! (`Reloadable::reload`) can turn it off (`default-features = false`).
//! `remote` (off by default; Linux) adds plugins on another machine
//! (`tomada_host::remote`, `Mode::Remote`, `tomada serve`), and with them a TLS stack
//! (`rustls` with `ring`). A host that never loads a remote plugin leaves it off.

#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bytes;
mod error;
pub mod escape;
mod file;

/// The README's code blocks, compiled (and run where they can) as doctests, so the
/// first page a newcomer reads never rots.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
mod inspect;
#[cfg(any(unix, windows))]
pub mod isolate;
/// Isolation: not implemented on this platform yet; the API is the same as on Unix,
/// and isolating a plugin fails with [`LoadError::IsolationUnsupported`].
#[cfg(not(any(unix, windows)))]
#[path = "isolate/unsupported.rs"]
pub mod isolate;
mod library;
mod logs;
pub mod reload;
#[cfg(all(target_os = "linux", feature = "remote"))]
#[cfg_attr(docsrs, doc(cfg(all(target_os = "linux", feature = "remote"))))]
pub mod remote;

pub use logs::plugin_logs;
pub use reload::{ReloadError, ReloadEvent, Reloadable};
#[cfg(feature = "watch")]
#[cfg_attr(docsrs, doc(cfg(feature = "watch")))]
pub use reload::{Watch, WatchError};
mod plugin_fn;
mod structure;
mod trust;
pub mod unload;
pub use unload::{Hazard, UnloadReport, pinned_libraries, unload_pinned_libraries};

use std::ffi::c_void;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::path::{Path, PathBuf};

pub use error::{Damage, Exposure, Flaw, LaunchError, LoadError, Mismatch, NotLibrary, Step, Table};
pub use inspect::{
    Export, Inspection, Slice, expectations, expectations_bytes, inspect, inspect_bytes, inspect_slices,
};
pub use tomada::interface::{Fit, Interface};
pub use tomada::{self, CallError, Contract, Info, Manifest, descriptor::flags};
/// Objects a plugin made, as the host holds them: see [`tomada::Handle`].
pub use tomada::{Handle, handle};
pub use trust::{PolicyError, TrustPolicy};

use file::PluginFile;
use library::Library;
use tomada::client::{RawClient, Target};
use tomada::descriptor::DestroyFn;
use trust::Provenance;

/// A loaded plugin implementing contract `C` (a trait object type such as
/// `dyn Greeter`). Dereferences to the contract's generated client, so the trait's
/// methods are called on it directly; each returns `Result<_, CallError>`.
///
/// `Plugin` is `Send + Sync`: share it between threads with `Arc` and call from
/// all of them at once (contract traits are `Send + Sync`).
///
/// Dropping it drops the plugin instance, then closes the library. Everything a
/// call returned was copied into or handed over to host memory, so nothing the host
/// holds points into the library afterwards.
///
/// # Platform-specific behaviour
/// On glibc a library that registered thread-local destructors stays mapped until
/// those threads exit, so closing it does not always unmap it: such a library is
/// listed by [`pinned_libraries`] ([`Hazard::ThreadLocalDestructor`]) until it is
/// unloaded.
pub struct Plugin<C: ?Sized + Contract> {
    client: ManuallyDrop<C::Client>,
    backend: Backend,
    manifest: Manifest,
    path: PathBuf,
}

/// Where a plugin's code runs. The fields are held for their `Drop`: the instance
/// and library, or the child process.
#[allow(dead_code)]
enum Backend {
    /// Loaded into this process.
    Local(Local),
    /// In a child process (see [`isolate`]).
    Isolated(std::sync::Arc<isolate::Isolated>),
}

// SAFETY: the instance behind the client is `Send + Sync` (contract traits require
// it; `export!` makes only such instances), the client is `Send + Sync`, and the
// backends are: `Local`'s instance is destroyed once, from `drop`; `Isolated` is
// made of `Send + Sync` parts.
unsafe impl<C: ?Sized + Contract> Send for Plugin<C> {}
// SAFETY: as above; `&Plugin` only reaches `&C::Client` and immutable metadata.
unsafe impl<C: ?Sized + Contract> Sync for Plugin<C> {}

/// A plugin library opened and checked in this process, with its instance.
pub(crate) struct Local {
    pub(crate) vtable: *const c_void,
    pub(crate) this: *const c_void,
    // Read by the isolation runner (Unix and Windows).
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) dispatch: tomada::client::DispatchFn,
    pub(crate) destroy: DestroyFn,
    /// Shared with every object the plugin hands out: the library is closed when the
    /// last of them, or the instance, lets go.
    library: ManuallyDrop<std::sync::Arc<Library>>,
}

impl Drop for Local {
    fn drop(&mut self) {
        // SAFETY: `this` was made by this library's `create` and is destroyed once,
        // here, while the library is loaded.
        unsafe { plugin_fn::destroy(self.destroy, self.this) };
        // SAFETY: dropped once, here. The instance is gone, and clients (dropped before
        // their `Local`) moved all call results into host memory; objects the plugin
        // handed out hold their own reference, so the library stays open for them.
        unsafe { ManuallyDrop::drop(&mut self.library) };
    }
}

impl<C: ?Sized + Contract> Plugin<C> {
    /// The plugin's name, version and description (host-owned copies).
    pub fn info(&self) -> &Info {
        &self.manifest.info
    }

    /// Everything the plugin declared: contract, ABI, fingerprint, rustc, target.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The file the plugin was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The process id of an isolated plugin's current process (`None` in-process, or
    /// while an isolated plugin has no process, e.g. between a crash and the next call).
    pub fn process_id(&self) -> Option<u32> {
        match &self.backend {
            Backend::Local(_) => None,
            Backend::Isolated(isolated) => isolated.pid(),
        }
    }
}

impl<C: ?Sized + Contract> Deref for Plugin<C> {
    type Target = C::Client;
    fn deref(&self) -> &C::Client {
        &self.client
    }
}

impl<C: ?Sized + Contract> fmt::Debug for Plugin<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("contract", &C::NAME)
            .field("path", &self.path)
            .field("info", &self.manifest.info)
            .finish_non_exhaustive()
    }
}

impl<C: ?Sized + Contract> Drop for Plugin<C> {
    fn drop(&mut self) {
        // SAFETY: the client is dropped before the backend it points into, and never
        // used again; the backend drops with the rest of `self`.
        unsafe { ManuallyDrop::drop(&mut self.client) };
        // An isolated plugin's instance goes with its handle, as an in-process one
        // does; its process stays while objects it made are still held.
        #[cfg(any(unix, windows))]
        if let Backend::Isolated(isolated) = &self.backend {
            isolated.drop_instance();
        }
    }
}

/// Loads the plugin at `path` for contract `C` (e.g. `dyn pluginapi::Greeter`),
/// after checking, from the file and before loading it, that it implements `C`
/// exactly (see the [crate documentation](crate) for the order of checks). The same
/// as `Loader::new().inspect(path)?.check::<C>()?.load()`, with no trust policy.
///
/// # Errors
/// A [`LoadError`] variant for each check that fails, for a library the dynamic
/// loader refuses, and for a plugin whose constructor panics.
pub fn load<C: ?Sized + Contract>(path: impl AsRef<Path>) -> Result<Plugin<C>, LoadError> {
    Loader::new().load(path)
}

/// Loads plugins: one builder for everything a load can take — a [`TrustPolicy`]
/// ([`policy`](Loader::policy)), which export of a library ([`export`](Loader::export)),
/// what its constructor receives ([`config`](Loader::config)), and where it runs
/// ([`isolated`](Loader::isolated) in a child process, or in this process, the
/// default) — then [`load`](Loader::load)s, so every combination is one chain:
///
/// ```
/// use pluginapi::Greeter;
/// use tomada_host::isolate::{Isolation, Sandbox};
/// use tomada_host::{Loader, TrustPolicy};
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     // Isolated plugins run in a copy of this executable: it serves them from here.
///     tomada_host::isolate::serve_if_runner();
/// #   let dir = tempfile::tempdir()?;
/// #   let path = tomada_test_support::copy_to(&tomada_test_support::cdylib("family"), dir.path(), "family.so");
/// #   use sha2::Digest;
/// #   let sha256: String = sha2::Sha256::digest(std::fs::read(&path)?).iter().map(|b| format!("{b:02x}")).collect();
///     // A policy pins a library by the name of its first export.
///     let policy = TrustPolicy::new().pin("hello", &sha256)?.strict_modes(false);
///     let plugin = Loader::new()
///         .policy(policy)
///         .export("hola")
///         .config("Buenos días")
///         .isolated(Isolation::new().sandbox(Sandbox::strict()))
///         .load::<dyn Greeter>(&path)?;
///     assert!(plugin.greet("Mundo")?.starts_with("Buenos días, Mundo"));
///     assert!(plugin.process_id().is_some(), "in a process of its own");
///     Ok(())
/// }
/// ```
///
/// The same load as typed stages, for a host that looks at the file before choosing:
/// the loader opens and inspects a file into an [`Inspected`] — verified against the
/// policy if there is one; there is no other way to make an `Inspected` — whose
/// [`check`](Inspected::check) against a contract gives a [`Checked<C>`], which alone
/// can be [`load`](Checked::load)ed in this process, [`isolate`](Checked::isolate)d, or
/// started in the loader's mode ([`start`](Checked::start)). Every step goes through
/// the one descriptor the file was opened with. [`load`] and
/// [`load_with`] are shortcuts for a loader with nothing set but the mode.
///
/// A library may export several plugins (see `tomada::export!`): `check::<C>()`
/// takes the one export implementing `C`, or the one named with
/// [`export`](Loader::export) when there are several. What the plugin's constructor
/// receives from the host (`tomada::context()`) is set with
/// [`config`](Loader::config) or [`config_value`](Loader::config_value).
///
/// Each load and each refusal is a `tracing` event (target `tomada::audit`, level
/// INFO) with the file, its SHA-256 (computed when a policy needs it or a subscriber
/// listens), the key that signed it, and the decision.
#[derive(Debug, Clone, Default)]
pub struct Loader {
    policy: Option<std::sync::Arc<TrustPolicy>>,
    export: Option<String>,
    config: Vec<u8>,
    mode: isolate::Mode,
    /// [`Loader::debug_info`]`(false)`: the sealed copy leaves the DWARF out.
    without_debug_info: bool,
}

/// A plugin file opened once, inspected through that descriptor, and (under a
/// policy) verified. Made only by [`Loader::inspect`].
#[derive(Debug)]
pub struct Inspected {
    file: PluginFile,
    inspection: Inspection,
    provenance: Provenance,
    /// The export asked for by name, if any.
    export: Option<String>,
    /// What the plugin's constructor receives (`tomada::context()`).
    config: Vec<u8>,
    /// Where [`Checked::start`] runs it.
    mode: isolate::Mode,
}

/// An [`Inspected`] plugin that fits contract `C`: ready to load or isolate.
pub struct Checked<C: ?Sized + Contract> {
    inspected: Inspected,
    fit: Fit,
    contract: PhantomData<fn() -> *const C>,
}

impl<C: ?Sized + Contract> fmt::Debug for Checked<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checked").field("contract", &C::NAME).field("inspected", &self.inspected).finish()
    }
}

impl Loader {
    /// A loader with no trust policy: compatible plugins load, whoever made them.
    pub fn new() -> Self {
        Self::default()
    }

    /// A loader that verifies every plugin against `policy` before anything else
    /// reads its contents (see [`TrustPolicy`]).
    pub fn with_policy(policy: TrustPolicy) -> Self {
        Loader { policy: Some(std::sync::Arc::new(policy)), ..Self::default() }
    }

    /// Verifies every plugin against `policy` before anything else reads its contents
    /// (see [`TrustPolicy`]); replaces any policy set before.
    pub fn policy(mut self, policy: TrustPolicy) -> Self {
        self.policy = Some(std::sync::Arc::new(policy));
        self
    }

    /// Where plugins this loader loads run: [`Mode::InProcess`](isolate::Mode::InProcess)
    /// (the default), [`Mode::Isolated`](isolate::Mode::Isolated), or on Linux with
    /// the `remote` feature `Mode::Remote` (another machine's `tomada serve`; see the
    /// `remote` module), where the path
    /// given to [`Loader::load`] names the plugin on the server.
    pub fn mode(mut self, mode: isolate::Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Runs each plugin this loader loads in a child process, with `options` (see
    /// [`isolate`]): `mode(Mode::Isolated(options))`.
    pub fn isolated(self, options: isolate::Isolation) -> Self {
        self.mode(isolate::Mode::Isolated(options))
    }

    /// Loads each plugin into this process (the default): `mode(Mode::InProcess)`.
    pub fn in_process(self) -> Self {
        self.mode(isolate::Mode::InProcess)
    }

    /// Picks the export named `name` in every library this loader loads (see
    /// [`Inspected::export`]); without it, a library's one export of the contract
    /// asked for is taken.
    pub fn export(mut self, name: impl Into<String>) -> Self {
        self.export = Some(name.into());
        self
    }

    /// Hands `config` (bytes or text) to each plugin's constructor, which reads it
    /// with `tomada::context()`, in-process and isolated alike. Without it the
    /// context is empty. A plugin built before contexts existed never sees it.
    pub fn config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.config = config.into();
        self
    }

    /// Hands `value` to each plugin's constructor, which reads it with
    /// `tomada::context().value::<T>()` (the same type on both sides, e.g. a struct
    /// of the contract crate).
    pub fn config_value<T: tomada::Abi>(self, value: &T) -> Self {
        self.config(tomada::Context::encode(value))
    }

    /// Whether the private copy each plugin loads from (Linux: the sealed `memfd` that
    /// makes what was checked what runs) holds the plugin's DWARF debug info — its
    /// `.debug_*` sections. `true` by default: debuggers and backtraces then give
    /// file and line for the plugin's frames, as for the host's.
    ///
    /// `false` leaves the debug info out of the copy (holes of the same length that
    /// read as zeros and take no memory): a plugin built with debug info (`debug = 1`
    /// in a release profile, or any dev build) then loads about as fast as its
    /// stripped build, since the copy's cost is per page (docs/benchmarks.md). What
    /// the loader maps, what the checks read and the symbol table are copied all the
    /// same, so every check is unchanged and gdb and backtraces still name the
    /// plugin's functions, without file and line. No effect where nothing is copied
    /// (a file that cannot change; other systems than Linux), nor where the whole
    /// file is hashed anyway (under a [`TrustPolicy`], or with the audit trail on).
    ///
    /// ```
    /// // A host of many plugins, each shipped with `debug = 1`, that wants loads fast.
    /// let loader = tomada_host::Loader::new().debug_info(false);
    /// # drop(loader);
    /// ```
    pub fn debug_info(mut self, copied: bool) -> Self {
        self.without_debug_info = !copied;
        self
    }

    /// Opens `path` once, inspects it through that descriptor, and verifies it
    /// against the policy, if any.
    ///
    /// # Errors
    /// As [`inspect`]; under a policy also [`LoadError::Unsigned`],
    /// [`LoadError::BadSignature`], [`LoadError::UnknownKey`], [`LoadError::NotPinned`],
    /// [`LoadError::DigestMismatch`], [`LoadError::VersionTooOld`],
    /// [`LoadError::Permissions`].
    pub fn inspect(&self, path: impl AsRef<Path>) -> Result<Inspected, LoadError> {
        let path = path.as_ref();
        // The copy holds the whole file unless asked to leave the debug info out, and
        // always where something hashes it: a policy's signature or pin, or the audit
        // trail's SHA-256.
        let whole = !self.without_debug_info || self.policy.is_some() || audit::enabled();
        let extent = if whole { file::Extent::Whole } else { file::Extent::WithoutDebugInfo };
        // A plugin that runs in a process of its own may share its sealed copy with
        // the other live isolated plugins of the same unchanged file (`file::shared`).
        let file = match &self.mode {
            isolate::Mode::Isolated(options) => match options.sharing_class() {
                Some(class) => PluginFile::open_shared(path, extent, class),
                None => PluginFile::open(path, extent),
            },
            _ => PluginFile::open(path, extent),
        }
        .inspect_err(|e| audit::refused(path, &Provenance::default(), e))?;
        let inspection = match inspect::inspect_file(&file) {
            Ok(i) => i,
            Err(e) => {
                audit::refused(path, &audit::provenance(&file), &e);
                return Err(e);
            }
        };
        let provenance = match &self.policy {
            None => Provenance::default(),
            Some(policy) => {
                let info = &inspection.manifest.info;
                match policy.verify(&file, &info.name, &info.version) {
                    Ok(p) => p,
                    Err(e) => {
                        audit::refused(path, &audit::provenance(&file), &e);
                        return Err(e);
                    }
                }
            }
        };
        Ok(Inspected {
            file,
            inspection,
            provenance,
            export: self.export.clone(),
            config: self.config.clone(),
            mode: self.mode.clone(),
        })
    }

    /// Loads the plugin at `path` for contract `C` with everything set on this loader:
    /// `self.inspect(path)?.check::<C>()?.start()` — verified against the policy,
    /// the chosen export checked against `C`, then loaded in this loader's mode.
    ///
    /// # Errors
    /// As [`Loader::inspect`], [`Inspected::check`], and [`Checked::load`] or
    /// [`Checked::isolate`] (by mode).
    pub fn load<C: ?Sized + Contract>(&self, path: impl AsRef<Path>) -> Result<Plugin<C>, LoadError> {
        // A remote plugin's file is the server's: `path` names it there.
        #[cfg(all(target_os = "linux", feature = "remote"))]
        if let isolate::Mode::Remote(remote) = &self.mode {
            return remote::load::<C>(self, path.as_ref(), remote);
        }
        self.inspect(path)?.check::<C>()?.start()
    }
}

impl Inspected {
    /// What the file declares.
    pub fn inspection(&self) -> &Inspection {
        &self.inspection
    }

    /// Every export of the library (one for most plugins).
    pub fn exports(&self) -> &[Export] {
        &self.inspection.exports
    }

    /// Picks the export named `name` for [`check`](Inspected::check) (which says
    /// whether it implements the contract); without it, `check::<C>()` takes the
    /// library's one export of `C`.
    pub fn export(mut self, name: impl Into<String>) -> Self {
        self.export = Some(name.into());
        self
    }

    /// What the plugin's constructor receives (see [`Loader::config`]).
    pub fn config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.config = config.into();
        self
    }

    /// What the plugin's constructor receives, as a value (see [`Loader::config_value`]).
    pub fn config_value<T: tomada::Abi>(self, value: &T) -> Self {
        self.config(tomada::Context::encode(value))
    }

    /// The file's SHA-256, if the policy computed it.
    pub fn sha256(&self) -> Option<[u8; 32]> {
        self.provenance.sha256
    }

    /// Whether what was inspected (and would be loaded) is a sealed copy of the file
    /// (Linux), not the file itself: one of its own, or, inspected by an isolated-mode
    /// [`Loader`], maybe one shared with the live isolated plugins of the same
    /// unchanged file (docs/isolation.md, "One sealed copy for every instance of a
    /// file"; an in-process load of it gets one of its own). `false` where the file cannot change —
    /// it is immutable (`chattr +i`) or has fs-verity, so the copy would protect
    /// nothing and is skipped — where no sealed `memfd` can be made, and elsewhere
    /// than Linux. See docs/living.md.
    pub fn sealed_copy(&self) -> bool {
        self.file.sealed_copy()
    }

    /// The id of the trusted key that signed the file, if a policy verified a signature.
    pub fn signed_by(&self) -> Option<&str> {
        self.provenance.key.as_deref()
    }

    /// Picks the export to load — the one named with [`export`](Inspected::export),
    /// or else the library's one export of `C` — and checks it against contract `C`
    /// (see [`check`]).
    ///
    /// # Errors
    /// [`LoadError::NoSuchExport`] for a name the library does not export,
    /// [`LoadError::AmbiguousExport`] if several exports implement `C` and none was
    /// named; otherwise as [`check`].
    pub fn check<C: ?Sized + Contract>(mut self) -> Result<Checked<C>, LoadError> {
        let index = match self.inspection.export_for_abi(C::NAME, C::ABI, self.export.as_deref()) {
            Ok(export) => export.manifest.index,
            Err(e) => {
                self.refused(&e);
                return Err(e);
            }
        };
        // Inspection starts with the first export chosen: most libraries have only that.
        if self.inspection.manifest.index != index {
            self.inspection.choose(index).expect("an export of this inspection");
        }
        match check::<C>(&self.inspection) {
            Ok(fit) => Ok(Checked { inspected: self, fit, contract: PhantomData }),
            Err(e) => {
                self.refused(&e);
                Err(e)
            }
        }
    }

    fn refused(&self, e: &LoadError) {
        let provenance = match self.provenance.sha256 {
            Some(_) => self.provenance.clone(),
            None => audit::provenance(&self.file),
        };
        audit::refused(&self.file.path, &provenance, e);
    }

    fn loaded(&self, how: &str) {
        let provenance = match self.provenance.sha256 {
            Some(_) => self.provenance.clone(),
            None => audit::provenance(&self.file),
        };
        audit::loaded(&self.file.path, &provenance, how);
    }
}

impl<C: ?Sized + Contract> Checked<C> {
    /// What the file declares.
    pub fn inspection(&self) -> &Inspection {
        &self.inspected.inspection
    }

    /// Loads the plugin in the mode of the [`Loader`] that inspected it: [`load`](Checked::load)
    /// in this process or [`isolate`](Checked::isolate) with its options.
    ///
    /// # Errors
    /// As [`Checked::load`] or [`Checked::isolate`].
    pub fn start(mut self) -> Result<Plugin<C>, LoadError> {
        match std::mem::take(&mut self.inspected.mode) {
            isolate::Mode::InProcess => self.load(),
            isolate::Mode::Isolated(options) => self.isolate(&options),
            // (`Loader::load` takes a remote plugin before any local file is inspected.)
            #[cfg(all(target_os = "linux", feature = "remote"))]
            isolate::Mode::Remote(_) => Err(LoadError::Unavailable {
                plugin: self.inspected.inspection.path.clone(),
                detail: "a remote plugin is loaded with `Loader::load` (or `load_with`), by the name the server serves it under, not from an inspected local file".to_owned(),
            }),
        }
    }

    /// Loads the plugin into this process: exactly the file inspected.
    ///
    /// # Errors
    /// [`LoadError::Open`] if the dynamic loader refuses it,
    /// [`LoadError::MissingSymbol`], [`LoadError::DescriptorMismatch`],
    /// [`LoadError::InitPanicked`].
    pub fn load(self) -> Result<Plugin<C>, LoadError> {
        let Checked { inspected, fit, .. } = self;
        let Inspected { file, inspection, provenance, config, .. } = inspected;
        // Inspected by an isolated-mode `Loader`, the file may be a copy shared with
        // isolated plugins: a load here gets one of its own (one library per load).
        let file = file.private().inspect_err(|e| audit::refused(&inspection.path, &provenance, e))?;
        let sha_needed = provenance.sha256.is_none() && audit::enabled();
        let provenance = if sha_needed { audit::provenance(&file) } else { provenance };
        // `inspection.path` is the file's path (inspection went through `file`).
        let local = match open(file, &inspection, logs::services(), &config) {
            Ok(l) => l,
            Err(e) => {
                audit::refused(&inspection.path, &provenance, &e);
                return Err(e);
            }
        };
        audit::loaded(&inspection.path, &provenance, "in-process");
        let Inspection { path, manifest, .. } = inspection;
        // Objects the plugin hands out keep its library open, even past this handle.
        let keepalive: tomada::client::Keepalive = std::sync::Arc::clone(&*local.library) as _;
        // Types that differ across minor versions cross by their byte form.
        let target = if fit.by_bytes {
            let keepalive = std::sync::Arc::clone(&keepalive);
            Target::Remote(std::sync::Arc::new(bytes::LocalBytes::new(local.dispatch, local.this, keepalive)))
        } else {
            Target::Local { vtable: local.vtable, this: local.this }
        };
        // SAFETY: `vtable` is the plugin's vtable for this contract, whose first
        // `fit.provided` methods match the host's exactly (checked from the manifest,
        // which is the loaded library's); `this` is its instance; the `Plugin` keeps both
        // alive longer than the client, which it drops first.
        let client =
            unsafe { C::__client(RawClient::new(target, fit.provided, manifest.contract.minor).keep(keepalive)) };
        Ok(Plugin { client: ManuallyDrop::new(client), backend: Backend::Local(local), manifest, path })
    }

    /// Runs the plugin in a child process (see [`isolate`]), which loads the very
    /// file inspected: it inherits the open descriptor, never the path.
    ///
    /// # Errors
    /// [`LoadError::Isolation`] if the child process cannot be started or dies while
    /// loading; the child's own [`LoadError`] variant (e.g. [`LoadError::Open`],
    /// [`LoadError::InitPanicked`]) if it refuses or fails to load the plugin;
    /// [`LoadError::Isolation`] with [`LaunchError::SandboxUnsupported`] for a sandbox
    /// where there is none (Windows); [`LoadError::IsolationUnsupported`] where
    /// isolation is not implemented (neither Unix nor Windows).
    pub fn isolate(self, options: &isolate::Isolation) -> Result<Plugin<C>, LoadError> {
        let Checked { inspected, fit, .. } = self;
        let isolated = match isolate::start(&inspected.inspection, &inspected.file, &inspected.config, options) {
            Ok(i) => i,
            Err(e) => {
                inspected.refused(&e);
                return Err(e);
            }
        };
        inspected.loaded("isolated");
        let channel: std::sync::Arc<dyn tomada::client::Channel> = isolated.clone();
        let Inspection { path, manifest, .. } = inspected.inspection;
        // SAFETY: the channel leads to a child process serving this very file, whose
        // contract was checked against `C` (its first `fit.provided` methods match).
        let client =
            unsafe { C::__client(RawClient::new(Target::Remote(channel), fit.provided, manifest.contract.minor)) };
        Ok(Plugin { client: ManuallyDrop::new(client), backend: Backend::Isolated(isolated), manifest, path })
    }
}

/// The audit trail: one `tracing` event per decision.
mod audit {
    use std::path::Path;

    use crate::file::PluginFile;
    use crate::trust::{Provenance, hex};

    /// Whether anyone listens (the SHA-256 is computed only then, or under a policy).
    pub(crate) fn enabled() -> bool {
        tracing::enabled!(target: "tomada::audit", tracing::Level::INFO)
    }

    pub(crate) fn provenance(file: &PluginFile) -> Provenance {
        // A copy of what loads only (the audit trail was off when the file was opened)
        // has no digest of the file to give.
        Provenance { sha256: if enabled() && file.whole() { crate::trust::sha256(file) } else { None }, key: None }
    }

    fn digest(p: &Provenance) -> String {
        p.sha256.map(|d| hex(&d)).unwrap_or_default()
    }

    pub(crate) fn refused(path: &Path, p: &Provenance, reason: &crate::LoadError) {
        tracing::info!(
            target: "tomada::audit",
            file = %path.display(),
            sha256 = %digest(p),
            key = p.key.as_deref().unwrap_or(""),
            decision = "refused",
            reason = %reason,
            "plugin refused"
        );
    }

    pub(crate) fn loaded(path: &Path, p: &Provenance, how: &str) {
        tracing::info!(
            target: "tomada::audit",
            file = %path.display(),
            sha256 = %digest(p),
            key = p.key.as_deref().unwrap_or(""),
            decision = "loaded",
            mode = how,
            "plugin loaded"
        );
    }
}

/// Opens an inspected plugin in this process, checks the chosen export's descriptor
/// against the inspection, hands it `services` and makes its instance with `context`.
/// Knows no contract: [`load`] checks the contract first; the isolation runner serves
/// whatever the host checked.
pub(crate) fn open(
    file: PluginFile,
    inspection: &Inspection,
    services: *const tomada::logging::HostServices,
    context: &[u8],
) -> Result<Local, LoadError> {
    let Inspection { manifest, manifest_bytes, .. } = inspection;
    let path = &inspection.path;
    // SAFETY: the file passed inspection: it is a tomada plugin, so its initialisers
    // are those of a tomada cdylib.
    let library = unsafe { Library::open(file) }.map_err(|(path, source)| LoadError::Open { path, source })?;
    let mismatch = |what| LoadError::DescriptorMismatch { path: path.clone(), what };
    let symbol = tomada::descriptor::symbol(manifest.index);
    let descriptor = library
        .descriptor(&symbol)
        .map_err(mismatch)?
        .ok_or_else(|| LoadError::MissingSymbol { path: path.clone() })?;
    // SAFETY: the header matched, so the descriptor has this boundary version's
    // layout; `manifest` points to the library's manifest static.
    let loaded_manifest = unsafe { descriptor.manifest.as_bytes() };
    if loaded_manifest != manifest_bytes.as_slice() {
        return Err(mismatch(Mismatch::ManifestBytes));
    }
    // SAFETY: as above, `contract` borrows a string static of the library.
    let contract = unsafe { descriptor.contract.as_bytes() };
    if descriptor.abi != manifest.contract.abi
        || descriptor.fingerprint != manifest.contract.fingerprint
        || contract != manifest.contract.name.as_bytes()
    {
        return Err(mismatch(Mismatch::Contract));
    }

    // The plugin's `log` records go to this host's logger (see `plugin_logs`), from
    // before its instance is made. Its name is read from its own manifest static, so
    // it lives exactly as long as the library.
    let name = tomada::descriptor::name_in(loaded_manifest);
    // Native sequences (a `Vec` of records crossing as its buffer) only with plugins
    // built by this compiler for this target; one that is not turns them off here.
    tomada::abi::native::admit(&manifest.rustc, &manifest.target, manifest.flags);
    // SAFETY: `attach` is the plugin's (descriptor checked above), and `library` stays
    // loaded; the services are a `'static` of this host and the name a slice of the
    // library's own static.
    unsafe { plugin_fn::attach(descriptor.attach, services, name) };

    // SAFETY: `create` and `create_with` are the plugin's constructors (descriptor
    // checked above), and `library` stays loaded.
    let this = match unsafe { plugin_fn::create(descriptor.create, descriptor.create_with, context) } {
        plugin_fn::Created::Instance(this) => this,
        plugin_fn::Created::Panicked(message) => return Err(LoadError::InitPanicked { path: path.clone(), message }),
        plugin_fn::Created::BadStatus => return Err(mismatch(Mismatch::ConstructorStatus)),
    };
    Ok(Local {
        vtable: descriptor.vtable,
        this,
        dispatch: descriptor.dispatch,
        destroy: descriptor.destroy,
        library: ManuallyDrop::new(std::sync::Arc::new(library)),
    })
}

/// Loads the plugin at `path` for contract `C` in the given [`isolate::Mode`]: in
/// this process (as [`load`]) or in a child process. Either way the file is inspected
/// and checked against `C` first, and the handle is the same type, called the same way.
/// The same as `Loader::new().mode(mode.clone()).load(path)`; a [`Loader`] also takes
/// a trust policy, an export name and a configuration.
///
/// # Errors
/// As [`load`], and [`LoadError::Isolation`] if the child process cannot be started
/// or cannot load the plugin; [`LoadError::IsolationUnsupported`] for an isolated
/// mode where isolation is not implemented (neither Unix nor Windows).
pub fn load_with<C: ?Sized + Contract>(path: impl AsRef<Path>, mode: &isolate::Mode) -> Result<Plugin<C>, LoadError> {
    Loader::new().mode(mode.clone()).load(path)
}

/// Checks an inspected plugin's chosen export ([`Inspection::manifest`]; see
/// [`Inspection::choose`]) against contract `C`: name, ABI, methods (see
/// [`tomada::interface`] for what fits), and that its panics can be caught. [`load`]
/// does this before opening the file, after picking the export for `C`.
///
/// # Errors
/// [`LoadError::ContractMismatch`], [`LoadError::AbiMismatch`],
/// [`LoadError::LayoutMismatch`], [`LoadError::PanicAbort`].
pub fn check<C: ?Sized + Contract>(inspection: &Inspection) -> Result<Fit, LoadError> {
    let plugin = &inspection.manifest.contract;
    let path = || inspection.path.clone();
    if plugin.name != C::NAME {
        let exports = if inspection.exports.len() > 1 {
            inspection
                .exports
                .iter()
                .map(|e| format!("{} ({})", e.manifest.info.name, e.manifest.contract.name))
                .collect()
        } else {
            Vec::new()
        };
        return Err(LoadError::ContractMismatch {
            path: path(),
            expected: C::NAME.into(),
            found: plugin.name.clone(),
            exports,
        });
    }
    if plugin.abi != C::ABI {
        return Err(LoadError::AbiMismatch {
            path: path(),
            contract: C::NAME.into(),
            expected: C::ABI,
            found: plugin.abi,
        });
    }
    let fit = if plugin.fingerprint == C::FINGERPRINT && plugin.methods.len() == C::DESCRIPTION.methods.len() {
        Fit { provided: plugin.methods.len(), by_bytes: false }
    } else {
        let host = Interface::from(&C::DESCRIPTION);
        host.fit(plugin).map_err(|differences| LoadError::LayoutMismatch {
            path: path(),
            contract: C::NAME.into(),
            plugin_version: plugin.version(),
            host_version: host.version(),
            differences,
        })?
    };
    if inspection.manifest.flags & flags::PANIC_UNWIND == 0 {
        return Err(LoadError::PanicAbort { path: path() });
    }
    Ok(fit)
}

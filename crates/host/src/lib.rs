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

#![deny(unsafe_op_in_unsafe_fn)]

mod error;
pub mod escape;
mod inspect;
#[cfg(unix)]
pub mod isolate;
mod library;

use std::ffi::c_void;
use std::fmt;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ops::Deref;
use std::path::{Path, PathBuf};

pub use error::LoadError;
pub use inspect::{Inspection, expectations, expectations_bytes, inspect, inspect_bytes};
pub use tomada::interface::{Fit, Interface};
pub use tomada::{self, CallError, Contract, Info, Manifest, descriptor::flags};

use library::Library;
use tomada::descriptor::DestroyFn;
use tomada::ffi::{RVec, Status};

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
/// those threads exit, so closing it does not always unmap it.
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
    /// In a child process (see [`isolate`]); boxed so the client's `this` stays put.
    #[cfg(unix)]
    Isolated(Box<tomada::remote::RemoteObject>, std::sync::Arc<isolate::Isolated>),
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
    pub(crate) dispatch: tomada::remote::DispatchFn,
    destroy: DestroyFn,
    library: ManuallyDrop<Library>,
}

impl Drop for Local {
    fn drop(&mut self) {
        let mut panic = MaybeUninit::<RVec>::uninit();
        // SAFETY: `this` was made by this library's `create` and is destroyed once,
        // here; `panic` is writable.
        if unsafe { (self.destroy)(self.this, panic.as_mut_ptr()) } == Status::PANICKED {
            // SAFETY: written on PANICKED. A panic in a plugin's `Drop` has nowhere to
            // go from here; the message is freed.
            drop(unsafe { panic.assume_init() });
        }
        // SAFETY: nothing refers into the library any more: the instance is gone, and
        // clients (dropped before their `Local`) moved all call results into host
        // memory.
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
            #[cfg(unix)]
            Backend::Isolated(_, isolated) => isolated.pid(),
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
    }
}

/// Loads the plugin at `path` for contract `C` (e.g. `dyn pluginapi::Greeter`),
/// after checking, from the file and before loading it, that it implements `C`
/// exactly (see the [crate documentation](crate) for the order of checks).
///
/// # Errors
/// A [`LoadError`] variant for each check that fails, for a library the dynamic
/// loader refuses, and for a plugin whose constructor panics.
pub fn load<C: ?Sized + Contract>(path: impl AsRef<Path>) -> Result<Plugin<C>, LoadError> {
    let inspection = inspect(path)?;
    let fit = check::<C>(&inspection)?;
    let local = open(&inspection)?;
    let Inspection { path, manifest, .. } = inspection;
    // SAFETY: `vtable` is the plugin's vtable for this contract, whose first
    // `fit.provided` methods match the host's exactly (checked from the manifest,
    // which is the loaded library's); `this` is its instance; the `Plugin` keeps both
    // alive longer than the client, which it drops first.
    let client = unsafe { C::__client(local.vtable, local.this, fit.provided, manifest.contract.minor) };
    Ok(Plugin { client: ManuallyDrop::new(client), backend: Backend::Local(local), manifest, path })
}

/// Opens an inspected plugin in this process, checks its exported descriptor
/// against the inspection, and makes its instance. Knows no contract: [`load`] checks
/// the contract first; the isolation runner serves whatever the host checked.
pub(crate) fn open(inspection: &Inspection) -> Result<Local, LoadError> {
    let Inspection { path, manifest, manifest_bytes } = inspection;
    // SAFETY: the file passed inspection: it is a tomada plugin, so its initialisers
    // are those of a tomada cdylib.
    let library = unsafe { Library::open(path) }.map_err(|source| LoadError::Open { path: path.clone(), source })?;
    let mismatch = |what| LoadError::DescriptorMismatch { path: path.clone(), what };
    let descriptor =
        library.descriptor().map_err(mismatch)?.ok_or_else(|| LoadError::MissingSymbol { path: path.clone() })?;
    // SAFETY: the header matched, so the descriptor has this boundary version's
    // layout; `manifest` points to the library's manifest static.
    let loaded_manifest = unsafe { descriptor.manifest.as_bytes() };
    if loaded_manifest != manifest_bytes.as_slice() {
        return Err(mismatch("manifest bytes"));
    }
    // SAFETY: as above, `contract` borrows a string static of the library.
    let contract = unsafe { descriptor.contract.as_bytes() };
    if descriptor.abi != manifest.contract.abi
        || descriptor.fingerprint != manifest.contract.fingerprint
        || contract != manifest.contract.name.as_bytes()
    {
        return Err(mismatch("contract, ABI or fingerprint"));
    }

    let mut this = MaybeUninit::<*const c_void>::uninit();
    let mut panic = MaybeUninit::<RVec>::uninit();
    // SAFETY: `create` is the plugin's constructor (descriptor checked above);
    // `this` and `panic` are writable.
    let status = unsafe { (descriptor.create)(this.as_mut_ptr(), panic.as_mut_ptr()) };
    match status {
        Status::OK => {}
        Status::PANICKED => {
            // SAFETY: written on PANICKED.
            let message = String::from_utf8_lossy(&unsafe { panic.assume_init() }.into_vec()).into_owned();
            return Err(LoadError::InitPanicked { path: path.clone(), message });
        }
        _ => return Err(mismatch("constructor status")),
    }
    Ok(Local {
        vtable: descriptor.vtable,
        // SAFETY: written on OK.
        this: unsafe { this.assume_init() },
        dispatch: descriptor.dispatch,
        destroy: descriptor.destroy,
        library: ManuallyDrop::new(library),
    })
}

/// Loads the plugin at `path` for contract `C` in the given [`isolate::Mode`]: in
/// this process (as [`load`]) or in a child process. Either way the file is inspected
/// and checked against `C` first, and the handle is the same type, called the same way.
///
/// # Errors
/// As [`load`], and [`LoadError::Isolation`] if the child process cannot be started
/// or cannot load the plugin.
#[cfg(unix)]
pub fn load_with<C: ?Sized + Contract>(path: impl AsRef<Path>, mode: &isolate::Mode) -> Result<Plugin<C>, LoadError> {
    let options = match mode {
        isolate::Mode::InProcess => return load(path),
        isolate::Mode::Isolated(options) => options,
    };
    let inspection = inspect(path)?;
    let fit = check::<C>(&inspection)?;
    let isolated = isolate::start(&inspection, options)?;
    let channel: std::sync::Arc<dyn tomada::remote::Channel> = isolated.clone();
    let remote = Box::new(tomada::remote::RemoteObject { channel });
    let Inspection { path, manifest, .. } = inspection;
    // SAFETY: `REMOTE_VTABLE` is this contract's remote vtable, whose shims expect a
    // `RemoteObject` as `this`; the box is kept by the `Plugin`, at a fixed address,
    // longer than the client, which it drops first.
    let client = unsafe {
        C::__client(
            C::REMOTE_VTABLE as *const C::VTable as *const c_void,
            &*remote as *const tomada::remote::RemoteObject as *const c_void,
            fit.provided,
            manifest.contract.minor,
        )
    };
    Ok(Plugin { client: ManuallyDrop::new(client), backend: Backend::Isolated(remote, isolated), manifest, path })
}

/// Checks an inspected plugin against contract `C`: name, ABI, methods (see
/// [`tomada::interface`] for what fits), and that its panics can be caught. [`load`]
/// does this before opening the file.
///
/// # Errors
/// [`LoadError::ContractMismatch`], [`LoadError::AbiMismatch`],
/// [`LoadError::LayoutMismatch`], [`LoadError::PanicAbort`].
pub fn check<C: ?Sized + Contract>(inspection: &Inspection) -> Result<Fit, LoadError> {
    let plugin = &inspection.manifest.contract;
    let path = || inspection.path.clone();
    if plugin.name != C::NAME {
        return Err(LoadError::ContractMismatch { path: path(), expected: C::NAME.into(), found: plugin.name.clone() });
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
        Fit { provided: plugin.methods.len() }
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

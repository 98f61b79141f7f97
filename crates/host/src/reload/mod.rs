//! Living plugins: a plugin replaced under a running host with no call lost.
//!
//! A [`Reloadable<dyn C>`](Reloadable) is made by [`Loader::reloadable`], so
//! everything the loader holds — mode (in-process or isolated), export, configuration
//! and trust policy — applies to every version. [`current`](Reloadable::current)
//! returns the version serving now as an `Arc<Plugin<dyn C>>` snapshot: a call made
//! on it finishes on that version, whatever happens meanwhile.
//! [`reload`](Reloadable::reload) puts the file through every check a first load
//! makes (inspection, contract fit, trust policy, the plugin's constructor) and swaps
//! only when all pass; new calls then go to the new version (one atomic pointer swap,
//! `arc-swap`). Any failure keeps the old version serving and says why, as a
//! [`ReloadError`] and a [`ReloadEvent::Refused`]. With the `watch` feature (on by
//! default), [`watch`](Reloadable::watch) reloads by itself when the file is rebuilt
//! (see `Watch`).
//!
//! What survives a reload: every `Arc<Plugin>` snapshot and every object a version
//! made keep *their* version alive (library mapped, or child process running) until
//! the last of them is dropped; then that version is unloaded like any dropped
//! [`Plugin`]. Plugin state does not move by itself: the new version's instance
//! starts fresh, unless the host opts in to a hand-off ([`Reloadable::hand_off`]).
//! Each version is loaded from a sealed copy of the file as it was (see
//! [`Loader`]'s loading on Linux), so rebuilding, copying over, renaming over or
//! deleting the file never changes a version that runs.

#[cfg(feature = "watch")]
mod watch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tomada::{Contract, Info};

#[cfg(feature = "watch")]
pub use watch::{Watch, WatchError};

use crate::{LoadError, Loader, Plugin};

/// A plugin that can be replaced by a new build of its file while the host runs;
/// see the [module documentation](self). Cheap to clone (all clones share the one
/// plugin); `Send + Sync`.
pub struct Reloadable<C: ?Sized + Contract> {
    shared: Arc<Shared<C>>,
}

impl<C: ?Sized + Contract> Clone for Reloadable<C> {
    fn clone(&self) -> Self {
        Reloadable { shared: Arc::clone(&self.shared) }
    }
}

/// A host's way of asking a version for its state (see [`Reloadable::hand_off`]).
type HandOff<C> = Arc<dyn Fn(&Plugin<C>) -> Option<Vec<u8>> + Send + Sync>;

pub(crate) struct Shared<C: ?Sized + Contract> {
    loader: Loader,
    path: PathBuf,
    current: ArcSwap<Plugin<C>>,
    /// The generation serving now: 1 for the first load, one more per swap.
    generation: AtomicU64,
    /// One reload at a time.
    reloading: Mutex<()>,
    /// What the old version hands its successor, if the host asked for it.
    hand_off: Mutex<Option<HandOff<C>>>,
    subscribers: Mutex<Vec<Sender<ReloadEvent>>>,
}

/// What a reload did, for the host to log: [`Reloadable::events`] hands them out,
/// and each is also a `tracing` event (target `tomada::reload`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReloadEvent {
    /// A new version passed every check and serves new calls from now on.
    Reloaded {
        /// The generation now serving (the first load is 1).
        generation: u64,
        /// The version that served until now.
        from: Info,
        /// The version serving from now on.
        to: Info,
        /// How long the swap itself took: from the new version loaded, checked and
        /// started to new calls going to it (one atomic pointer swap, which waits
        /// for no call in flight).
        swap: Duration,
    },
    /// A new file was refused; the version that served keeps serving.
    Refused {
        /// The generation that keeps serving.
        generation: u64,
        /// Why the file was refused.
        why: Arc<LoadError>,
    },
}

/// A reload refused: the version that served keeps serving.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the new {} was refused and version {serving} keeps serving: {why}", path.display())]
pub struct ReloadError {
    /// The plugin's file.
    pub path: PathBuf,
    /// The generation that keeps serving.
    pub serving: u64,
    /// Why the file was refused (every check a load makes can refuse it).
    pub why: Arc<LoadError>,
}

// SAFETY: `Plugin<C>` is `Send + Sync` (see its impls); the rest is `Send + Sync` std
// and arc-swap types.
unsafe impl<C: ?Sized + Contract> Send for Shared<C> {}
// SAFETY: as above.
unsafe impl<C: ?Sized + Contract> Sync for Shared<C> {}

impl Loader {
    /// Loads the plugin at `path` for contract `C`, as [`load`](Loader::load) does,
    /// into a [`Reloadable`] that [`reload`](Reloadable::reload)s it with this same
    /// loader (mode, export, configuration and trust policy).
    ///
    /// # Errors
    /// As [`Loader::load`].
    pub fn reloadable<C: ?Sized + Contract>(&self, path: impl AsRef<Path>) -> Result<Reloadable<C>, LoadError> {
        let path = path.as_ref().to_path_buf();
        let plugin = load_version::<C>(self, &path)?;
        Ok(Reloadable {
            shared: Arc::new(Shared {
                loader: self.clone(),
                path,
                current: ArcSwap::from_pointee(plugin),
                generation: AtomicU64::new(1),
                reloading: Mutex::new(()),
                hand_off: Mutex::new(None),
                subscribers: Mutex::new(Vec::new()),
            }),
        })
    }
}

/// One version: inspected, verified, checked and started (`Loader::load`).
fn load_version<C: ?Sized + Contract>(loader: &Loader, path: &Path) -> Result<Plugin<C>, LoadError> {
    loader.load::<C>(path)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<C: ?Sized + Contract> Reloadable<C> {
    /// The version serving now. A call made on it finishes on this version even if a
    /// reload swaps another in meanwhile; hold it no longer than needed (it keeps its
    /// version loaded).
    pub fn current(&self) -> Arc<Plugin<C>> {
        self.shared.current.load_full()
    }

    /// The generation serving now: 1 for the first load, one more per reload.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// The plugin's file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Every [`ReloadEvent`] from now on (each receiver gets each event; a dropped
    /// receiver is forgotten).
    pub fn events(&self) -> Receiver<ReloadEvent> {
        let (tx, rx) = std::sync::mpsc::channel();
        lock(&self.shared.subscribers).push(tx);
        rx
    }

    /// Loads the file again, through every check of a first load, and swaps the new
    /// version in only if all pass. Returns the generation now serving.
    ///
    /// # Errors
    /// A [`ReloadError`] with the [`LoadError`] that refused the file (incompatible,
    /// damaged or truncated, unsigned under a policy, a constructor that panicked, an
    /// isolated child that died while starting, ...): the old version keeps serving.
    pub fn reload(&self) -> Result<u64, ReloadError> {
        self.shared.reload()
    }

    /// Opts in to state hand-off: at each reload, `state` is asked for the serving
    /// version's state (typically by calling a method of the contract that returns
    /// it as bytes), and the new version's constructor receives those bytes as its
    /// context (`tomada::context()`) instead of the loader's configuration. `None`
    /// (or no hand-off at all) starts the new instance with the loader's
    /// configuration, fresh.
    ///
    /// The state is taken once, just before the new version is loaded: what calls
    /// still in flight on the old version change after that is not carried over. A
    /// refused reload leaves the old version, and its state, serving.
    pub fn hand_off(&self, state: impl Fn(&Plugin<C>) -> Option<Vec<u8>> + Send + Sync + 'static) -> &Self {
        *lock(&self.shared.hand_off) = Some(Arc::new(state));
        self
    }

    /// Watches the plugin's file and reloads it each time it settles with new
    /// contents, until the returned [`Watch`] is dropped (see [`Watch`]).
    ///
    /// Only with the `watch` feature (on by default): it brings `notify` and
    /// `notify-debouncer-full`.
    ///
    /// # Errors
    /// [`WatchError`] if the file's directory cannot be watched.
    #[cfg(feature = "watch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "watch")))]
    pub fn watch(&self) -> Result<Watch, WatchError>
    where
        C: 'static,
    {
        watch::start(Arc::clone(&self.shared))
    }
}

impl<C: ?Sized + Contract> Shared<C> {
    /// A reload; on success the generation now serving.
    fn reload(&self) -> Result<u64, ReloadError> {
        let _one = lock(&self.reloading);
        let hand_off = lock(&self.hand_off).clone();
        let state = hand_off.and_then(|state| state(&self.current.load()));
        let loader = match state {
            Some(state) => &self.loader.clone().config(state),
            None => &self.loader,
        };
        match load_version::<C>(loader, &self.path) {
            Ok(plugin) => {
                let to = plugin.info().clone();
                let plugin = Arc::new(plugin);
                let started = Instant::now();
                let old = self.current.swap(plugin);
                let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
                let swap = started.elapsed();
                let from = old.info().clone();
                // The old version goes when its last snapshot, call and object do.
                drop(old);
                tracing::info!(
                    target: "tomada::reload",
                    file = %self.path.display(),
                    generation,
                    from = %from.version,
                    to = %to.version,
                    swap_ns = swap.as_nanos() as u64,
                    "plugin reloaded"
                );
                self.emit(ReloadEvent::Reloaded { generation, from, to, swap });
                Ok(generation)
            }
            Err(e) => {
                let serving = self.generation.load(Ordering::Acquire);
                let why = Arc::new(e);
                tracing::warn!(
                    target: "tomada::reload",
                    file = %self.path.display(),
                    generation = serving,
                    reason = %why,
                    "plugin reload refused"
                );
                self.emit(ReloadEvent::Refused { generation: serving, why: Arc::clone(&why) });
                Err(ReloadError { path: self.path.clone(), serving, why })
            }
        }
    }

    fn emit(&self, event: ReloadEvent) {
        lock(&self.subscribers).retain(|s| s.send(event.clone()).is_ok());
    }
}

impl<C: ?Sized + Contract> std::fmt::Debug for Reloadable<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloadable")
            .field("contract", &C::NAME)
            .field("path", &self.shared.path)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

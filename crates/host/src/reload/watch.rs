//! Reloading by itself: the plugin's directory watched with `notify`, its events
//! debounced (`notify-debouncer-full`), and the file reloaded once it has settled.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use sha2::Digest;
use tomada::Contract;

use super::Shared;

/// How long each change to the plugin's file is held before it is acted on
/// (`notify-debouncer-full` hands an event on once it is this old, with the others
/// old enough by then): a build writing the file, a `cp` in progress, a delete
/// followed by a create each make a burst of events, mostly handled as one. A file
/// still being written when the first of them is handed on is caught by `settled`
/// and the second look at a file that does not inspect.
const SETTLE: Duration = Duration::from_millis(150);

/// A watch of a [`Reloadable`](super::Reloadable)'s file, made by
/// [`Reloadable::watch`](super::Reloadable::watch); dropping it stops watching.
///
/// The file's *directory* is watched (not the file), so a watch survives the file
/// being renamed over (`mv`), deleted and created again, or rewritten by a build
/// (`cargo build` removes the old file and links a new one in). A moment after each
/// change to the file (or its signature, `FILE.minisig`; opening or reading them is
/// not a change), the file is read whole and hashed, and counts as settled only if its size,
/// modification time and identity did not change meanwhile (a file still being
/// written is left for its next event; so is an empty file, and a file that does not
/// inspect is given another moment to change). Settled contents already serving, or already
/// tried, are not loaded again. Anything else is [`reload`](super::Reloadable::reload)ed:
/// every check applies, and the outcome is a [`ReloadEvent`](super::ReloadEvent)
/// (`Reloaded` or `Refused`). A deleted file leaves the version serving as it is.
///
/// A path that is a **symbolic link** (`plugins/foo.so -> ../target/debug/libfoo.so`)
/// is followed, as [`reload`](super::Reloadable::reload) follows it: the directory of
/// the file it leads to (resolved to the end of a chain of links) is watched too, and
/// a change there is a change of the plugin; when the link itself is changed to lead
/// elsewhere (`ln -sfn`), the new target's directory is watched from then on instead.
/// (Not seen: the target's directory deleted and made again, as `cargo clean` and a
/// build do, while the link stays as it is; make the watch again after that.)
pub struct Watch {
    debouncer: Arc<std::sync::Mutex<Option<Watcher>>>,
    stop: Sender<Message>,
    worker: Option<JoinHandle<()>>,
}

/// Why a file cannot be watched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The file's path names no directory to watch.
    #[error("cannot watch {}: its path has no directory and file name", path.display())]
    NoDirectory {
        /// The plugin's file.
        path: PathBuf,
    },
    /// The operating system's watch failed (e.g. too many inotify watches: raise
    /// `fs.inotify.max_user_watches`).
    #[error("cannot watch the directory of {}: {source}", path.display())]
    Notify {
        /// The plugin's file.
        path: PathBuf,
        /// What `notify` reported.
        #[source]
        source: notify::Error,
    },
}

type Watcher = Debouncer<notify::RecommendedWatcher, RecommendedCache>;

enum Message {
    Events(DebounceEventResult),
    Stop,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(debouncer) = self.debouncer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            debouncer.stop_nonblocking();
        }
        let _ = self.stop.send(Message::Stop);
        if let Some(worker) = self.worker.take() {
            // A reload under way finishes first.
            let _ = worker.join();
        }
    }
}

pub(super) fn start<C: ?Sized + Contract + 'static>(shared: Arc<Shared<C>>) -> Result<Watch, WatchError> {
    let path = std::path::absolute(&shared.path).unwrap_or_else(|_| shared.path.clone());
    let no_dir = || WatchError::NoDirectory { path: shared.path.clone() };
    let dir = path.parent().ok_or_else(no_dir)?.to_path_buf();
    let name = path.file_name().ok_or_else(no_dir)?.to_owned();
    let mut signature = name.clone();
    signature.push(".minisig");
    let (tx, rx) = std::sync::mpsc::channel();
    let events = tx.clone();
    let notify_error = |source| WatchError::Notify { path: shared.path.clone(), source };
    let mut debouncer = new_debouncer(SETTLE, None, move |result: DebounceEventResult| {
        let _ = events.send(Message::Events(result));
    })
    .map_err(notify_error)?;
    debouncer.watch(&dir, RecursiveMode::NonRecursive).map_err(notify_error)?;
    let mut file = Watched { path, dir, names: [name, signature], target: None };
    file.follow(&mut debouncer).map_err(notify_error)?;
    // What is there now is what serves (or was refused at the first load): only a
    // change from it is worth a reload.
    let seen = settled(&file.path);
    let debouncer = Arc::new(std::sync::Mutex::new(Some(debouncer)));
    let watcher = Arc::clone(&debouncer);
    let worker = std::thread::Builder::new()
        .name("tomada-watch".into())
        .spawn(move || work(&shared, &mut file, &watcher, &rx, seen))
        .map_err(|e| WatchError::Notify { path: PathBuf::new(), source: notify::Error::io(e) })?;
    Ok(Watch { debouncer, stop: tx, worker: Some(worker) })
}

struct Watched {
    /// The plugin's path, absolute (a symbolic link, maybe).
    path: PathBuf,
    /// Its directory, as watched.
    dir: PathBuf,
    /// The file's name and its signature's.
    names: [std::ffi::OsString; 2],
    /// Where `path` leads, if it is a symbolic link: see [`Target`].
    target: Option<Target>,
}

/// The file a symbolic link leads to, as last resolved.
struct Target {
    /// The file, every link on the way resolved.
    file: PathBuf,
    /// Its directory, watched by this watch (`None`: it is the link's own).
    dir: Option<PathBuf>,
}

impl Watched {
    /// Resolves the link again (if `path` is one) and, if it now leads into another
    /// directory, watches that one instead of the last. A link that leads nowhere
    /// now (its target being replaced) keeps the last target.
    fn follow(&mut self, debouncer: &mut Watcher) -> Result<(), notify::Error> {
        let is_link = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            self.forget_target(debouncer);
            return Ok(());
        }
        let Ok(file) = std::fs::canonicalize(&self.path) else { return Ok(()) };
        if self.target.as_ref().is_some_and(|t| t.file == file) {
            return Ok(());
        }
        let Some(target_dir) = file.parent().map(Path::to_path_buf) else { return Ok(()) };
        let own = std::fs::canonicalize(&self.dir).is_ok_and(|d| d == target_dir);
        let dir = if own {
            None
        } else if self.target.as_ref().and_then(|t| t.dir.as_ref()) == Some(&target_dir) {
            Some(target_dir)
        } else {
            debouncer.watch(&target_dir, RecursiveMode::NonRecursive)?;
            self.forget_target(debouncer);
            Some(target_dir)
        };
        self.target = Some(Target { file, dir });
        Ok(())
    }

    /// Stops watching the last target's directory (if it was one of its own).
    fn forget_target(&mut self, debouncer: &mut Watcher) {
        if let Some(dir) = self.target.take().and_then(|t| t.dir) {
            let _ = debouncer.unwatch(&dir);
        }
    }

    /// Whether `path` (an event's) is the link's target.
    fn is_target(&self, path: &Path) -> bool {
        let Some(target) = &self.target else { return false };
        match &target.dir {
            Some(_) => path == target.file,
            // In the link's own directory: named as it is watched.
            None => path.parent() == Some(&*self.dir) && path.file_name() == target.file.file_name(),
        }
    }

    fn concerns(&self, event: &notify::Event) -> bool {
        use notify::EventKind;
        use notify::event::{AccessKind, AccessMode};
        // An open, a read or a close after reading changes nothing, and this watch's
        // own reads (and the loader's) make them: counted, they woke the watch again
        // after every look, so it re-read the file every few hundred milliseconds for
        // good and took a file whose writing began meanwhile without its quiet period.
        let writes = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        };
        event.need_rescan()
            || (writes
                && event
                    .paths
                    .iter()
                    .any(|p| p.file_name().is_some_and(|n| self.names.iter().any(|m| m == n)) || self.is_target(p)))
    }
}

/// The file's contents (and signature's) once settled: a digest of both, or `None`
/// if the file is missing or changed while being read.
fn settled(path: &Path) -> Option<[u8; 32]> {
    use std::io::Read;
    let identity = |m: &std::fs::Metadata| {
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        };
        #[cfg(not(unix))]
        let id = (0u64, 0u64);
        (m.len(), m.modified().ok(), id)
    };
    let mut file = std::fs::File::open(path).ok()?;
    let before = identity(&file.metadata().ok()?);
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let after = identity(&std::fs::metadata(path).ok()?);
    // An empty file is one being written (a `cp` or build that truncated it), never
    // a plugin: its next event decides.
    if before != after || after.0 == 0 {
        return None;
    }
    let mut signature = path.as_os_str().to_owned();
    signature.push(".minisig");
    if let Ok(sig) = std::fs::read(PathBuf::from(signature)) {
        hasher.update(b"\0minisig\0");
        hasher.update(&sig);
    }
    Some(hasher.finalize().into())
}

fn work<C: ?Sized + Contract>(
    shared: &Shared<C>,
    file: &mut Watched,
    debouncer: &std::sync::Mutex<Option<Watcher>>,
    rx: &Receiver<Message>,
    mut seen: Option<[u8; 32]>,
) {
    while let Ok(Message::Events(result)) = rx.recv() {
        match result {
            Ok(events) if events.iter().any(|e| file.concerns(e)) => {}
            Ok(_) => continue,
            Err(errors) => {
                for e in errors {
                    tracing::warn!(target: "tomada::reload", file = %file.path.display(), error = %e, "watch error");
                }
                continue;
            }
        }
        // A link changed to lead elsewhere: its new target's directory is watched.
        if let Some(debouncer) = debouncer.lock().unwrap_or_else(|p| p.into_inner()).as_mut()
            && let Err(e) = file.follow(debouncer)
        {
            tracing::warn!(
                target: "tomada::reload",
                file = %file.path.display(),
                error = %e,
                "cannot watch the directory of the file the link now leads to: a change there is not seen"
            );
        }
        let Some(now) = settled(&file.path) else { continue };
        if seen == Some(now) {
            continue;
        }
        // A file that does not inspect may still be being written (a writer paused
        // longer than the quiet period): one more quiet period, and if it changed
        // meanwhile its next event decides.
        if crate::inspect(&file.path).is_err() {
            std::thread::sleep(SETTLE);
            if settled(&file.path) != Some(now) {
                continue;
            }
        }
        seen = Some(now);
        // The outcome is an event (and a `tracing` record) either way.
        let _ = shared.reload();
    }
}

//! One open file: a plugin is opened once, and everything after — inspection,
//! hashing, signature verification, loading — goes through that descriptor, so what
//! was checked is what runs even if someone swaps the path meanwhile.
//!
//! # How the loader gets exactly this file
//! - **Linux**: the file is copied once, when it is opened, into a private `memfd`
//!   sealed against every change (`F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW |
//!   F_SEAL_SEAL`), and *that* copy is what is inspected, hashed, verified, loaded
//!   and handed to an isolated plugin's process. Nothing can change it afterwards —
//!   not `cp new.so loaded.so` (which rewrites the plugin file's inode in place: with
//!   the file itself mapped, the running code would change under the host and crash
//!   it), not `mv`, not deleting it — so what runs is exactly what was checked, and
//!   the checks and the loader see the same bytes (no window between them).
//!   (`tomada_host::inspect`, which loads nothing, reads the file itself:
//!   [`PluginFile::open_to_read`].) The
//!   copy costs one in-kernel copy of the file (`copy_file_range`/`sendfile`) and
//!   its size in memory for as long as the library is loaded (its pages are not
//!   shared with the page cache). A host may leave the DWARF debug info out of the
//!   copy (`Loader::debug_info(false)`, [`Extent::WithoutDebugInfo`]): it then stays holes, so
//!   it costs nothing to load.
//!
//!   **Isolated plugins of one unchanged file share one copy** ([`shared`]): a host
//!   that starts the same file in several processes while one of them lives (instances,
//!   a pool, a start after a start) copies it once, and the children map the same
//!   pages (among plugins that cannot change the copy's mode: `Isolation::sharing_class`).
//!   A later start shares the copy only if the file, on a local file system,
//!   has the mount, device, inode, birth time, length and modification and change
//!   times it had when the copy was made, and only if its change time was then at
//!   least two seconds old; every check still runs on each load. A file rewritten in
//!   place is copied anew. In-process loads always copy (a shared copy would be one
//!   library for two loads): [`PluginFile::private`].
//!
//!   **A file that cannot change is not copied**: if the opened descriptor's inode
//!   has fs-verity or is immutable (`chattr +i`) — `statx` attributes
//!   `STATX_ATTR_VERITY` / `STATX_ATTR_IMMUTABLE`, asked of the descriptor, so of the
//!   opened inode whatever the path names later — nothing can write, truncate or
//!   replace its bytes, so the copy would protect nothing: the file itself is
//!   inspected, hashed and verified (hashed through a mapping, as the copy is) and loaded,
//!   as `/proc/<pid>/fd/N` of its own descriptor, every other check unchanged. This
//!   skips the copy's whole cost (most of a load; see docs/benchmarks.md, "Loads of
//!   files that cannot change"). [`PluginFile::sealed_copy`] (`Inspected::sealed_copy`)
//!   and a `debug` event say which way a file went. Only `CAP_LINUX_IMMUTABLE` can
//!   clear the immutable flag (fs-verity cannot be removed at all): clearing it and
//!   rewriting a loaded plugin in place is a privileged act this does not defend
//!   against. Two loads of one such file at once share one library (its statics), as
//!   two `dlopen`s of one file do; copies are libraries of their own.
//!
//!   A **read-only mount is not trusted**: `statfs`/`statvfs` report `ST_RDONLY` if
//!   the mount *or* its superblock is read-only (Linux's `calculate_f_flags` ORs the
//!   two), and a read-only bind mount, or a container's read-only root over an
//!   overlay whose layers live on a writable file system, leaves the very inode
//!   writable through another path. Even a read-only superblock (which
//!   `/proc/self/mountinfo`'s super options would tell) can be remounted writable, or
//!   its backing device or image rewritten. Such files are copied, as any other.
//!
//!   The library is loaded as `/proc/<pid>/fd/N`, `N` being the sealed copy, `<pid>`
//!   this process's number as `/proc` names it (`readlink /proc/self`): the kernel
//!   resolves the magic link to the open copy itself. That is also the library's
//!   name in the link map, `dladdr` and backtraces, and a name other processes
//!   can open too: gdb (attached, or reading a core's link map while the process
//!   lives) opens `/proc/<pid>/fd/N` and reads the very bytes that run — with
//!   `/proc/self/fd/N`, gdb opened a descriptor of its *own* and hung on it.
//!   (perf names frames by the mapping's file, `/memfd:tomada:<file name>`, which it
//!   cannot open; it names them by build ID with `perf record --buildid-mmap` and the
//!   build in its build-id cache: see docs/living.md.)
//!
//!   glibc matches libraries *by name* before opening anything, so a name must never
//!   be reused while a library of that name is still in the link map:
//!   [`PluginFile`] keeps its descriptor open for as long as the library may be
//!   loaded (see `library.rs`), parking it after `dlclose` until glibc has really
//!   unloaded it. `$ORIGIN` in a plugin's run path resolves to `/proc/<pid>/fd`, so
//!   dependencies found through `$ORIGIN` are not found: ship such dependencies where
//!   the system loader finds them.
//!
//!   Where no sealed `memfd` can be made (a kernel without `memfd_create`, a seccomp
//!   filter refusing it, `vm.memfd_noexec = 2`), the file's own descriptor is used,
//!   as `/proc/<pid>/fd/N` likewise: a rename, symlink swap or FIFO then still
//!   changes nothing, but a writer of that very inode can, which is what the
//!   [`TrustPolicy`](crate::TrustPolicy) permission checks are for.
//! - **Other Unix (macOS, BSDs)**: `dlopen` takes a path and there is no portable way
//!   to load an open descriptor; the library is loaded by its absolute path, after
//!   checking that the path still names the inspected inode. A swap between that check
//!   and `dlopen` is not excluded there: keep plugin directories writable only by
//!   their owner (the policy's permission checks refuse anything else).
//! - **Windows**: as other Unix, by absolute path.
//!
//! A relative name is made absolute against the current directory before anything
//! else, so the loader never searches its library path: `libz.so.1` means
//! `./libz.so.1` or nothing.

use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use crate::LoadError;

/// How much of a plugin file its sealed copy holds (Linux; see the module
/// documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Extent {
    /// Every byte (the default; always for whoever hashes the whole file: a trust
    /// policy's signature or pin, the audit trail's SHA-256).
    Whole,
    /// Every byte but the DWARF debug info (`.debug_*`, `.zdebug_*` sections that are
    /// not loaded), which stays holes that read as zeros and take no memory, so a
    /// plugin's debug info costs nothing to load ([`crate::Loader::debug_info`]).
    /// What the loader maps, what the checks read and the symbol table are all
    /// there. Anything but a 64-bit ELF file of this machine's byte order with
    /// ordinary header tables is copied whole.
    WithoutDebugInfo,
}

/// Whether [`PluginFile`] reads (and loads) a sealed copy of the file (Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The sealed copy: what is checked is what loads.
    SealedCopy(Extent),
    /// The sealed copy, shared with the other isolated plugins of a sharing class
    /// started from the same unchanged file while one of them lives
    /// ([`PluginFile::open_shared`]).
    SharedCopy(Extent, u8),
    /// The file itself: for reading only, never loaded.
    File,
}

/// A plugin file, open for reading: the one descriptor everything goes through.
#[derive(Debug)]
pub(crate) struct PluginFile {
    /// The path as the caller gave it (for messages and [`crate::Plugin::path`]).
    pub(crate) path: PathBuf,
    /// The path made absolute (what the loader uses where it takes paths).
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    pub(crate) absolute: PathBuf,
    /// What everything reads and loads: on Linux the sealed copy (or, failing that,
    /// the file itself), elsewhere the file.
    pub(crate) file: File,
    /// The plugin file's own metadata (owner and mode, for the trust policy).
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) meta: Metadata,
    /// The length of what `file` holds (the copy's, on Linux).
    len: u64,
    /// The device and inode of `file` (the copy's, on Linux): what the loader keys
    /// the library by.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) identity: (u64, u64),
    /// Whether `file`'s bytes and length can never change — a `memfd` carrying every
    /// seal (the copy was made), or a file that is immutable or has fs-verity — so it
    /// may be read through a mapping.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    sealed: bool,
    /// Whether `file` is a sealed copy (not the file itself): [`PluginFile::sealed_copy`].
    copied: bool,
    /// Whether `file` holds every byte of the plugin file: `false` only for a sealed
    /// copy without the debug info ([`Extent::WithoutDebugInfo`]), which is never hashed.
    whole: bool,
    /// Keeps the sealed copy offered to later isolated loads of the same unchanged
    /// file for as long as it lives ([`PluginFile::open_shared`]).
    pub(crate) sharing: Sharing,
    /// The executable segments (`p_vaddr`, `p_memsz`) its inspection found
    /// ([`PluginFile::set_code`]), once it was inspected.
    code: std::sync::OnceLock<Vec<(u64, u64)>>,
}

impl PluginFile {
    /// Opens `path` without blocking (a FIFO or device never hangs the host) and
    /// refuses anything that is not a regular, non-empty file. On Linux, what is read
    /// and loaded after is the sealed copy (see the module documentation), holding
    /// `extent` of the file.
    pub(crate) fn open(path: &Path, extent: Extent) -> Result<PluginFile, LoadError> {
        Self::open_as(path, Via::SealedCopy(extent))
    }

    /// As [`PluginFile::open`], for a plugin that runs in its own process: the sealed
    /// copy is shared with the other isolated plugins of sharing class `class`
    /// (`Isolation::sharing_class`) started from the same file, as long as one of them
    /// lives and the file has not changed since (see [`shared`]). Not for in-process loads, where a shared copy would be one
    /// library (one set of statics) for two loads.
    pub(crate) fn open_shared(path: &Path, extent: Extent, class: u8) -> Result<PluginFile, LoadError> {
        Self::open_as(path, Via::SharedCopy(extent, class))
    }

    /// As [`PluginFile::open`], for reading only (nothing of it is ever loaded:
    /// `tomada_host::inspect`, `tomada inspect`, a host's expectations): the file
    /// itself, without the sealed copy. The copy is what makes the checked bytes the
    /// loaded ones; with nothing loaded it would only cost a copy of the whole file
    /// (several times a `dlopen`) to read a few pages of it. A file rewritten while
    /// it is read gives a damaged or mixed inspection, never an unbounded read: every
    /// read is bounded by the length taken at open.
    pub(crate) fn open_to_read(path: &Path) -> Result<PluginFile, LoadError> {
        Self::open_as(path, Via::File)
    }

    fn open_as(path: &Path, via: Via) -> Result<PluginFile, LoadError> {
        let owned = || path.to_path_buf();
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir().map_err(|e| LoadError::Io { path: owned(), source: e })?.join(path)
        };
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // std adds O_CLOEXEC itself.
            options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
        }
        let file = options.open(&absolute).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => LoadError::NotFound { path: owned() },
            // Windows refuses to open a directory as a file ("access denied").
            #[cfg(windows)]
            io::ErrorKind::PermissionDenied if absolute.is_dir() => LoadError::NotAFile { path: owned() },
            _ => LoadError::Io { path: owned(), source: e },
        })?;
        Self::from_file_as(path.to_path_buf(), absolute, file, via)
    }

    /// Takes an open descriptor (e.g. inherited by an isolated plugin's process),
    /// with the same checks as [`PluginFile::open`]. A descriptor that is already a
    /// sealed copy (what the host hands its isolated plugins) is used as it is; any
    /// other is copied whole.
    pub(crate) fn from_file(path: PathBuf, absolute: PathBuf, file: File) -> Result<PluginFile, LoadError> {
        Self::from_file_as(path, absolute, file, Via::SealedCopy(Extent::Whole))
    }

    fn from_file_as(path: PathBuf, absolute: PathBuf, file: File, via: Via) -> Result<PluginFile, LoadError> {
        // Before the metadata: what a shared copy's key compares the change time with.
        #[cfg(target_os = "linux")]
        let opened = std::time::SystemTime::now();
        let meta = file.metadata().map_err(|e| LoadError::Io { path: path.clone(), source: e })?;
        if !meta.is_file() {
            return Err(LoadError::NotAFile { path });
        }
        if meta.len() == 0 {
            return Err(LoadError::NotALibrary { path, reason: crate::error::NotLibrary::Empty });
        }
        #[cfg(target_os = "linux")]
        let (file, len, identity, sealed, copied, whole, sharing) = if let Via::SealedCopy(extent)
        | Via::SharedCopy(extent, _) = via
        {
            use std::os::unix::fs::MetadataExt;
            let io = |e| LoadError::Io { path: path.clone(), source: e };
            let stx = sealed::statx(&file);
            if let Some(why) = stx.as_ref().and_then(sealed::unchanging) {
                // The inode itself can never change: a copy would protect nothing.
                tracing::debug!(path = %path.display(), why, "no sealed copy: the file cannot change");
                let identity = (meta.dev(), meta.ino());
                (file, meta.len(), identity, true, false, true, Sharing::default())
            } else {
                let key = match (via, &stx) {
                    (Via::SharedCopy(_, class), Some(stx)) => {
                        shared::Key::of(&file, stx, meta.len(), extent, class, opened)
                    }
                    _ => None,
                };
                let (file, sealed, whole, sharing) = match key.as_ref().and_then(shared::find) {
                    Some((copy, whole, sharing)) => {
                        tracing::debug!(path = %path.display(), "the sealed copy of a live isolated plugin of this unchanged file, shared");
                        (copy, true, whole, sharing)
                    }
                    None => {
                        let (copy, sealed, whole) = sealed::copy(file, &path, meta.len(), extent).map_err(io)?;
                        let sharing = match key {
                            Some(key) if sealed => shared::offer(key, &copy, whole),
                            _ => Sharing::default(),
                        };
                        (copy, sealed, whole, sharing)
                    }
                };
                let copied = file.metadata().map_err(io)?;
                (file, copied.len(), (copied.dev(), copied.ino()), sealed, sealed, whole, sharing)
            }
        } else {
            use std::os::unix::fs::MetadataExt;
            let identity = (meta.dev(), meta.ino());
            (file, meta.len(), identity, false, false, true, Sharing::default())
        };
        #[cfg(not(target_os = "linux"))]
        let _ = via;
        #[cfg(not(target_os = "linux"))]
        let (len, identity) = {
            #[cfg(unix)]
            use std::os::unix::fs::MetadataExt;
            #[cfg(unix)]
            let identity = (meta.dev(), meta.ino());
            #[cfg(not(unix))]
            let identity = (0, 0);
            (meta.len(), identity)
        };
        #[cfg(not(target_os = "linux"))]
        let (sealed, copied, whole, sharing) = (false, false, true, Sharing::default());
        if len == 0 {
            return Err(LoadError::NotALibrary { path, reason: crate::error::NotLibrary::Empty });
        }
        Ok(PluginFile {
            path,
            absolute,
            file,
            meta,
            len,
            identity,
            sealed,
            copied,
            whole,
            sharing,
            code: Default::default(),
        })
    }

    /// This file with a sealed copy of its own: a shared copy ([`PluginFile::open_shared`])
    /// copied again, for a load into this process (where a shared copy would make two
    /// loads one library); any other file as it is. The bytes are the same ones, so
    /// what was checked of them still holds.
    pub(crate) fn private(self) -> Result<PluginFile, LoadError> {
        #[cfg(target_os = "linux")]
        if self.sharing.0.is_some() {
            if shared::withdraw(&self.sharing) {
                // Nobody else held it, and nobody can take it now: it is this load's own.
                return Ok(PluginFile { sharing: Sharing::default(), ..self });
            }
            use std::os::unix::fs::MetadataExt;
            let extent = if self.whole { Extent::Whole } else { Extent::WithoutDebugInfo };
            let io = |e| LoadError::Io { path: self.path.clone(), source: e };
            let Some((file, whole)) = sealed::copy_anew(&self.file, &self.path, self.len, extent).map_err(io)? else {
                return Err(io(io::Error::other("no sealed copy can be made for an in-process load")));
            };
            let copied = file.metadata().map_err(io)?;
            // (The same bytes: the executable segments found in them, `code`, hold.)
            return Ok(PluginFile {
                identity: (copied.dev(), copied.ino()),
                file,
                whole: whole && self.whole,
                sharing: Sharing::default(),
                ..self
            });
        }
        Ok(self)
    }

    /// Whether what is read and loaded is a sealed copy of the file (Linux; maybe shared
    /// with isolated plugins: [`PluginFile::open_shared`]),
    /// rather than the file itself: `false` for a file that cannot change (immutable,
    /// or fs-verity: see the module documentation), where the copy is skipped, for
    /// [`PluginFile::open_to_read`], where no `memfd` can be made, and elsewhere than
    /// Linux.
    pub(crate) fn sealed_copy(&self) -> bool {
        self.copied
    }

    /// Whether what is read holds every byte of the file: `false` for a sealed copy
    /// without the debug info ([`Extent::WithoutDebugInfo`]), whose holes read as zeros.
    pub(crate) fn whole(&self) -> bool {
        self.whole
    }

    /// Whether the bytes read and loaded can never change (a sealed copy, or a file
    /// that is immutable or has fs-verity): what was read once is what the loader read.
    #[cfg(target_os = "linux")]
    pub(crate) fn unchanging(&self) -> bool {
        self.sealed
    }

    /// Keeps the executable `PT_LOAD` segments (`p_vaddr`, `p_memsz`) the structural
    /// check read from these bytes (the first inspection's, if inspected again: the
    /// same bytes where they are used, see [`PluginFile::code`]).
    pub(crate) fn set_code(&self, code: Vec<(u64, u64)>) {
        let _ = self.code.set(code);
    }

    /// The executable segments kept by [`PluginFile::set_code`], if the bytes can
    /// never change ([`PluginFile::unchanging`]): then they are the ones the loader
    /// mapped, and an unload needs not read the program headers again. `None`
    /// otherwise, or if the file was never inspected.
    #[cfg(target_os = "linux")]
    pub(crate) fn code(&self) -> Option<&[(u64, u64)]> {
        self.code.get().filter(|_| self.sealed).map(Vec::as_slice)
    }

    /// The length of what is read and loaded (on Linux the sealed copy's: the file's
    /// length as it was copied).
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Reads `buf.len()` bytes at `offset` (a `pread`: no shared file position).
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.file.read_exact_at(buf, offset)
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::FileExt;
            let mut done = 0;
            while done < buf.len() {
                match self.file.seek_read(&mut buf[done..], offset + done as u64)? {
                    0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                    n => done += n,
                }
            }
            Ok(())
        }
    }

    /// Appends the `n` bytes at `offset` to `buf` (room for them is reserved first, so a
    /// failed reservation is an error, not an abort). On Unix they are read straight
    /// into the reserved room, without zeroing it first.
    pub(crate) fn append_at(&self, buf: &mut Vec<u8>, n: usize, offset: u64) -> io::Result<()> {
        buf.try_reserve_exact(n).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let mut done = 0;
            while done < n {
                let room = &mut buf.spare_capacity_mut()[..n - done];
                let at = libc::off_t::try_from(offset + done as u64).map_err(|_| io::ErrorKind::InvalidInput)?;
                // SAFETY: `room` is writable memory of `room.len()` bytes owned by `buf`;
                // `pread` writes at most that many bytes into it and reads no memory.
                let read = unsafe { libc::pread(self.file.as_raw_fd(), room.as_mut_ptr().cast(), room.len(), at) };
                match read {
                    0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                    r if r < 0 => {
                        let e = io::Error::last_os_error();
                        if e.kind() != io::ErrorKind::Interrupted {
                            return Err(e);
                        }
                    }
                    r => {
                        let r = r as usize;
                        // SAFETY: `pread` initialised the first `r` bytes of the spare room
                        // (`r <= room.len()`), which follow the vector's current length.
                        unsafe { buf.set_len(buf.len() + r) };
                        done += r;
                    }
                }
            }
            Ok(())
        }
        #[cfg(not(unix))]
        {
            let start = buf.len();
            buf.resize(start + n, 0);
            self.read_exact_at(&mut buf[start..], offset)
        }
    }

    /// Feeds the whole file, once, in order, to `sink` (hashing, signature
    /// verification). Reads what was the file's length at open; a file that shrank
    /// since is an error, and so is a copy without the debug info ([`Extent::WithoutDebugInfo`]:
    /// its holes are not the file's bytes).
    pub(crate) fn read_all(&self, mut sink: impl FnMut(&[u8])) -> io::Result<()> {
        if !self.whole {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the sealed copy leaves the debug info out: it is not the whole file",
            ));
        }
        // A sealed copy is read where it lies, without copying it into a buffer,
        // its pages mapped in one call (`MAP_POPULATE`) rather than a fault each.
        #[cfg(target_os = "linux")]
        if let Some(mapped) = self.sealed.then(|| Mapped::new(&self.file, self.len)).flatten() {
            sink(mapped.bytes());
            return Ok(());
        }
        let mut buf = vec![0u8; 256 * 1024];
        let mut offset = 0u64;
        let len = self.len();
        while offset < len {
            let n = (len - offset).min(buf.len() as u64) as usize;
            self.read_exact_at(&mut buf[..n], offset)?;
            sink(&buf[..n]);
            offset += n as u64;
        }
        Ok(())
    }

    /// What to hand the dynamic loader so it opens exactly this file.
    pub(crate) fn loader_name(&self) -> Result<PathBuf, LoadError> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            Ok(PathBuf::from(format!("/proc/{}/fd/{}", sealed::proc_self(), self.file.as_raw_fd())))
        }
        #[cfg(not(target_os = "linux"))]
        {
            // No way to load a descriptor: the path, if it still names this file.
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                let now = std::fs::metadata(&self.absolute).ok();
                if now.is_none_or(|m| (m.dev(), m.ino()) != (self.meta.dev(), self.meta.ino())) {
                    return Err(LoadError::DescriptorMismatch {
                        path: self.path.clone(),
                        what: crate::error::Mismatch::ReplacedFile,
                    });
                }
            }
            Ok(self.absolute.clone())
        }
    }
}

/// Keeps a shared sealed copy on offer to later isolated loads of the same unchanged
/// file (see [`shared`]) for as long as it lives: held by the [`PluginFile`] and by
/// the isolated plugin started from it. Empty for any other file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sharing(#[allow(dead_code)] Option<std::sync::Arc<File>>);

/// Sealed copies shared between isolated plugins started from one unchanged file
/// (Linux): a host that starts the same plugin file in several processes (instances,
/// a pool, one per tenant) makes one copy, not one per start, and its children map
/// the same pages.
///
/// A copy is offered under its file's identity and metadata as they were before the
/// copy was made — the mount's unique id (`STATX_MNT_ID_UNIQUE`, never reused while
/// the system runs), device, inode, birth time, length, modification and change
/// times, and the [`Extent`] — for as long as a [`PluginFile`] or an isolated plugin
/// holding it lives (the registry holds it weakly). A later open whose file has the
/// very same key takes a new descriptor of it instead of copying.
///
/// Only a file whose change time was already [`SETTLED`] in the past when the copy was
/// made is offered, after git's idea of "racily clean" index entries: on a local
/// file system every write, truncation, `chmod` or `utimensat` sets the change time
/// to the kernel's clock, which no one but the kernel sets, so a file changed after
/// its copy was made has a change time after that moment, which is not the one in the
/// key. Renames and swaps of the path change the inode; a new inode of a reused number
/// has another birth time; a remount is another mount id. Only files on local file
/// systems whose times the kernel keeps are shared ([`LOCAL`]: ext2/3/4, xfs, btrfs,
/// f2fs, tmpfs): a network or FUSE file system reports times its server or daemon
/// chooses (sshfs reports the modification time as the change time, which `cp -p`
/// sets back), and those files are copied at every load, as before. So is everything
/// on a kernel before 6.8, which has no unique mount id.
///
/// What this does not see: a write through a shared writable mapping of the file to a
/// page that is already dirty (no time changes while the page stays dirty; on tmpfs,
/// for as long as it is mapped); a
/// single `write` still copying its data more than [`SETTLED`] after it began (the
/// kernel stamps the times at its start); the system clock set back by more than
/// [`SETTLED`]. Each can give a start a copy of the file as it was at the first start,
/// or torn by that write — never bytes that were not checked: a copy, shared or not, is
/// inspected, verified against the trust policy and checked against the contract in
/// full at each load.
#[cfg(target_os = "linux")]
pub(crate) mod shared {
    use super::{Extent, Sharing};
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::sync::{Arc, Mutex, Weak};
    use std::time::{Duration, SystemTime};

    /// How far in the past a file's change time must be when it is copied for the
    /// copy to be shared: well beyond the coarse clock's tick (≤ 10 ms) that file
    /// times are taken from.
    pub(crate) const SETTLED: Duration = Duration::from_secs(2);

    /// The file systems (`statfs`'s `f_type`) whose files may share a copy: local ones,
    /// whose times only the kernel's clock sets.
    pub(crate) const LOCAL: [u32; 5] = [
        0xEF53,      // ext2, ext3, ext4
        0x5846_5342, // xfs
        0x9123_683E, // btrfs
        0xF2F5_2010, // f2fs
        0x0102_1994, // tmpfs
    ];

    /// What a shared copy is offered under (see the module documentation).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Key {
        mount: u64,
        dev: (u32, u32),
        ino: u64,
        born: (i64, u32),
        len: u64,
        mtime: (i64, u32),
        ctime: (i64, u32),
        extent: Extent,
        /// Which plugins may share it (`Isolation::sharing_class`).
        class: u8,
    }

    impl Key {
        /// The key of `file`, whose `statx` is `stx` (taken after `opened`), if it is
        /// on a [`LOCAL`] file system, the kernel names its mount uniquely, its length
        /// is still `len` (what is copied) and its change time is at least [`SETTLED`]
        /// before `opened`.
        pub(crate) fn of(
            file: &File,
            stx: &libc::statx,
            len: u64,
            extent: Extent,
            class: u8,
            opened: SystemTime,
        ) -> Option<Key> {
            let mut fs = std::mem::MaybeUninit::<libc::statfs>::zeroed();
            // SAFETY: `fstatfs` of a descriptor we hold writes one `struct statfs` into
            // `fs`, which is large enough and writable.
            if unsafe { libc::fstatfs(file.as_raw_fd(), fs.as_mut_ptr()) } != 0 {
                return None;
            }
            // SAFETY: `fstatfs` succeeded and filled the struct (zeroed before anyway).
            // (`f_type` is an `i64` here, an `i32` on 32-bit glibc, where the magic
            // numbers past 2^31 are negative: their low 32 bits are compared.)
            let kind = unsafe { fs.assume_init() }.f_type as u32;
            if !LOCAL.contains(&kind) || stx.stx_mask & libc::STATX_MNT_ID_UNIQUE == 0 || stx.stx_size != len {
                return None;
            }
            let time = |t: libc::statx_timestamp| (t.tv_sec, t.tv_nsec);
            let key = Key {
                mount: stx.stx_mnt_id,
                dev: (stx.stx_dev_major, stx.stx_dev_minor),
                ino: stx.stx_ino,
                born: if stx.stx_mask & libc::STATX_BTIME != 0 { time(stx.stx_btime) } else { (0, 0) },
                len: stx.stx_size,
                mtime: time(stx.stx_mtime),
                ctime: time(stx.stx_ctime),
                extent,
                class,
            };
            key.settled(opened).then_some(key)
        }

        /// Whether the change time is at least [`SETTLED`] before `opened` (a change
        /// time before 1970 or in the future is not).
        pub(crate) fn settled(&self, opened: SystemTime) -> bool {
            let Ok(secs) = u64::try_from(self.ctime.0) else { return false };
            SystemTime::UNIX_EPOCH
                .checked_add(Duration::new(secs, self.ctime.1))
                .and_then(|changed| changed.checked_add(SETTLED))
                .is_some_and(|settled| settled <= opened)
        }
    }

    struct Entry {
        key: Key,
        copy: Weak<File>,
        whole: bool,
    }

    /// Every copy on offer (a few: one per file with a live isolated plugin).
    static COPIES: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

    fn copies() -> std::sync::MutexGuard<'static, Vec<Entry>> {
        COPIES.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new descriptor of the live copy offered under `key`, whether it holds the
    /// whole file, and what keeps it on offer; `None` if there is none.
    pub(crate) fn find(key: &Key) -> Option<(File, bool, Sharing)> {
        let (copy, whole) = {
            let copies = copies();
            let entry = copies.iter().find(|e| e.key == *key)?;
            (entry.copy.upgrade()?, entry.whole)
        };
        // (Outside the lock: dropping `copy` may close the last descriptor.)
        let file = copy.try_clone().ok()?;
        Some((file, whole, Sharing(Some(copy))))
    }

    /// Withdraws the copy `sharing` keeps on offer if `sharing` is its only holder (so
    /// no other load has it, and none can take it after): whether it did.
    pub(crate) fn withdraw(sharing: &Sharing) -> bool {
        let Some(copy) = &sharing.0 else { return false };
        let mut copies = copies();
        // (Under the lock: `find` takes a holder only under it.)
        if Arc::strong_count(copy) != 1 {
            return false;
        }
        copies.retain(|e| !std::ptr::eq(e.copy.as_ptr(), Arc::as_ptr(copy)));
        true
    }

    /// Offers `copy` (sealed, just made) under `key`, replacing whatever was offered
    /// under it; what keeps it on offer. Nothing is offered if its descriptor cannot be
    /// duplicated.
    pub(crate) fn offer(key: Key, copy: &File, whole: bool) -> Sharing {
        let Ok(kept) = copy.try_clone() else { return Sharing::default() };
        let kept = Arc::new(kept);
        let entry = Entry { key, copy: Arc::downgrade(&kept), whole };
        let mut copies = copies();
        // Dead entries hold no descriptor (it closed with its last holder): dropping
        // them here closes nothing.
        copies.retain(|e| e.copy.strong_count() > 0 && e.key != entry.key);
        copies.push(entry);
        Sharing(Some(kept))
    }
}

/// A read-only mapping of a sealed copy, or of a file that cannot change (for
/// [`PluginFile::read_all`]), unmapped on drop. Mapping an ordinary file would be
/// unsafe: a file truncated while mapped kills the reader with `SIGBUS`, and one
/// rewritten changes under it.
/// Hand-written: two system calls, and `memmap2` is not a dependency of this crate.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub(crate) struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

#[cfg(target_os = "linux")]
impl Mapped {
    /// Maps `len` bytes of `file`, every page at once (`MAP_POPULATE`: its one reader
    /// reads the whole file).
    fn new(file: &File, len: u64) -> Option<Mapped> {
        use std::os::fd::AsRawFd;
        let len = usize::try_from(len).ok().filter(|&l| l > 0)?;
        let flags = libc::MAP_SHARED | libc::MAP_POPULATE;
        // SAFETY: a new read-only shared mapping of `len` bytes of a descriptor we
        // hold; the kernel picks the address. Nothing else is touched.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, flags, file.as_raw_fd(), 0) };
        (ptr != libc::MAP_FAILED).then_some(Mapped { ptr, len })
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes of a `memfd` sealed against writing,
        // shrinking and growing, or of a file the kernel refuses to write or truncate
        // (immutable or fs-verity; only [`PluginFile`] makes a `Mapped`, only for such a
        // file), so they stay mapped, unchanged and never fault with `SIGBUS` until
        // `self` drops.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

#[cfg(target_os = "linux")]
impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `Mapped::new`, unmapped once; no slice of it
        // outlives `self` (`bytes` borrows `self`).
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Sealed private copies (Linux). Hand-written: no crate makes a sealed `memfd`
/// copy of an open file (`memfd` the crate wraps creation and seals, not the copy,
/// and would add a dependency for two system calls).
#[cfg(target_os = "linux")]
mod sealed {
    use super::Extent;
    use std::ffi::CString;
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::path::Path;

    /// Every seal: no write, no shrink, no growth, and no change to the seals.
    const ALL: libc::c_int = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    /// `MFD_EXEC` (Linux 6.3): the copy may be mapped executable even where
    /// `vm.memfd_noexec = 1` makes new `memfd`s non-executable by default.
    const MFD_EXEC: libc::c_uint = 0x0010;

    /// Whether `file` is a `memfd` carrying every seal (the copy made by [`copy`],
    /// e.g. inherited by an isolated plugin's process).
    pub(super) fn is_sealed(file: &File) -> bool {
        // SAFETY: `F_GET_SEALS` reads the seals of a descriptor we own; any other kind
        // of file gives -1 (EINVAL), which is "not sealed".
        let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
        seals >= 0 && seals & ALL == ALL
    }

    /// A sealed `memfd` holding `file`'s first `len` bytes — all of them, or for
    /// [`Extent::WithoutDebugInfo`] all but the debug info (see [`loaded`]) —
    /// and `true` twice (sealed; whole, or not). Fewer bytes if the file shrank while
    /// being copied: the copy is what is checked, so a torn copy fails inspection, it
    /// never loads something other than what was checked. `file` itself if it is
    /// already such a copy, or if no `memfd` can be made here (see the module
    /// documentation).
    pub(super) fn copy(file: File, path: &Path, len: u64, extent: Extent) -> io::Result<(File, bool, bool)> {
        if is_sealed(&file) {
            // Made by a host, which hashed it if it had to: as it is.
            return Ok((file, true, true));
        }
        match copy_anew(&file, path, len, extent)? {
            Some((copy, whole)) => Ok((copy, true, whole)),
            None => Ok((file, false, true)),
        }
    }

    /// A new sealed `memfd` holding `file`'s first `len` bytes (all of them, or all but
    /// the debug info: see [`copy`]) and whether it holds them all, even if `file` is
    /// itself a sealed copy; `None` where no `memfd` can be made.
    pub(super) fn copy_anew(file: &File, path: &Path, len: u64, extent: Extent) -> io::Result<Option<(File, bool)>> {
        let Some(copy) = create(path) else { return Ok(None) };
        let ranges = match extent {
            Extent::Whole => None,
            Extent::WithoutDebugInfo => loaded(file, len)?,
        };
        // The full length first (a hole, no pages), then each range in place; the
        // length that was inspected for emptiness (a file still growing is copied as
        // it was then).
        copy.set_len(len)?;
        let whole = ranges.is_none();
        for &(start, end) in ranges.as_deref().unwrap_or(&[(0, len)]) {
            copy_range(file, &copy, start, end)?;
        }
        // `F_SEAL_WRITE` fails with `EBUSY` while a page of the copy still has a
        // reference besides the file's (the kernel waits ~a few ms for them itself): on
        // a busy machine a page just written by `sendfile` can sit in another CPU's
        // batch a little longer. Tried again for up to ~100 ms before it is an error.
        let mut tries = 0;
        loop {
            // SAFETY: `F_ADD_SEALS` on the `memfd` we just made (with `MFD_ALLOW_SEALING`);
            // no writable mapping of it exists, so `F_SEAL_WRITE` can be added.
            if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, ALL) } == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            tries += 1;
            if e.raw_os_error() != Some(libc::EBUSY) || tries >= 50 {
                return Err(e);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Ok(Some((copy, whole)))
    }

    /// Copies `from`'s bytes `start..end` to the same place in `to`, in the kernel
    /// (`sendfile`: `copy_file_range` fails between two file systems). A source that
    /// ends early leaves the rest a hole (zeros), which the checks then see.
    fn copy_range(from: &File, to: &File, start: u64, end: u64) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        (&*to).seek(SeekFrom::Start(start))?;
        let mut offset = libc::off_t::try_from(start).map_err(|_| io::ErrorKind::InvalidInput)?;
        let mut left = end - start;
        while left > 0 {
            let n = left.min(1 << 30) as usize;
            // SAFETY: `sendfile` between two descriptors we hold, reading `from` at
            // `offset` (a local it advances) and writing `to` at its position; it
            // touches no memory of ours but `offset`.
            let done = unsafe { libc::sendfile(to.as_raw_fd(), from.as_raw_fd(), &mut offset, n) };
            match done {
                0 => break,
                d if d < 0 => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
                d => left -= d as u64,
            }
        }
        Ok(())
    }

    /// The byte ranges of `file`'s first `len` to copy for [`Extent::WithoutDebugInfo`],
    /// sorted, merged, whole pages: the ELF header, the program headers, every byte a
    /// program header names (what the loader maps, whatever the segment's type), the
    /// section headers, and every section but the debug info that is not loaded
    /// (`.debug_*`, `.zdebug_*`). `None` (copy it all) for anything but a 64-bit ELF
    /// file of this machine's byte order with ordinary header tables.
    ///
    /// Read from the file before the copy is made, so the file may change between
    /// this and the copy: that costs nothing but correctness of the *hint* — whatever
    /// the copy ends up holding is what is checked and what loads, holes included.
    /// Hand-written over `object`'s ELF structures: `object` parses a file in memory,
    /// and reading the whole file to parse it is the cost this avoids.
    pub(super) fn loaded(file: &File, len: u64) -> io::Result<Option<Vec<(u64, u64)>>> {
        use object::NativeEndian;
        use object::elf::{FileHeader64, ProgramHeader64, SHF_ALLOC, SHN_XINDEX, SHT_NOBITS, SectionHeader64};
        use object::read::elf::{FileHeader as _, ProgramHeader as _, SectionHeader as _};
        let e = NativeEndian;
        let read = |offset: u64, n: u64| -> io::Result<Option<Vec<u8>>> {
            use std::os::unix::fs::FileExt;
            match offset.checked_add(n) {
                Some(end) if end <= len && n <= len => {
                    let mut buf = vec![0u8; n as usize];
                    file.read_exact_at(&mut buf, offset)?;
                    Ok(Some(buf))
                }
                _ => Ok(None),
            }
        };
        // `count` entries of `T` at `offset`, if they lie within the file.
        fn entries<T: object::Pod>(
            read: &dyn Fn(u64, u64) -> io::Result<Option<Vec<u8>>>,
            offset: u64,
            count: u64,
        ) -> io::Result<Option<Vec<T>>> {
            let Some(bytes) = read(offset, count.saturating_mul(size_of::<T>() as u64))? else { return Ok(None) };
            Ok(object::pod::slice_from_bytes::<T>(&bytes, count as usize).ok().map(|(table, _)| table.to_vec()))
        }
        let header_size = size_of::<FileHeader64<NativeEndian>>() as u64;
        let Some(head) = read(0, header_size)? else { return Ok(None) };
        let Ok(header) = FileHeader64::<NativeEndian>::parse(&*head) else { return Ok(None) };
        let mut ranges = vec![(0, header_size)];
        let (phoff, phnum) = (header.e_phoff(e), u64::from(header.e_phnum(e)));
        let ph_size = size_of::<ProgramHeader64<NativeEndian>>() as u64;
        // `PN_XNUM` (0xffff: the count elsewhere) and odd entry sizes: copy all.
        if phnum == 0xffff || u64::from(header.e_phentsize(e)) != ph_size {
            return Ok(None);
        }
        let Some(phdrs) = entries::<ProgramHeader64<NativeEndian>>(&read, phoff, phnum)? else { return Ok(None) };
        ranges.push((phoff, phoff + phnum * ph_size));
        for ph in &phdrs {
            ranges.push((ph.p_offset(e), ph.p_offset(e).saturating_add(ph.p_filesz(e))));
        }
        let (shoff, shnum, shstrndx) = (header.e_shoff(e), u64::from(header.e_shnum(e)), header.e_shstrndx(e));
        let sh_size = size_of::<SectionHeader64<NativeEndian>>() as u64;
        if shoff != 0 {
            // Extended numbering (the count or the name table's index elsewhere): all.
            if shnum == 0 || shstrndx.0 == SHN_XINDEX.0 || u64::from(header.e_shentsize(e)) != sh_size {
                return Ok(None);
            }
            let Some(shdrs) = entries::<SectionHeader64<NativeEndian>>(&read, shoff, shnum)? else { return Ok(None) };
            ranges.push((shoff, shoff + shnum * sh_size));
            // The section names, to tell the debug info from the rest.
            let Some(names) = shdrs.get(usize::from(shstrndx.0)) else { return Ok(None) };
            // A name table of more than 1 MiB (a few kB in any real library) is not
            // read into memory for a hint: such a file is copied whole.
            if names.sh_size(e) > 1 << 20 {
                return Ok(None);
            }
            let Some(names) = read(names.sh_offset(e), names.sh_size(e))? else { return Ok(None) };
            for sh in &shdrs {
                let name = names.get(sh.sh_name(e) as usize..).unwrap_or_default();
                let debug = name.starts_with(b".debug_") || name.starts_with(b".zdebug_");
                let wanted = sh.sh_flags(e).0 & SHF_ALLOC.0 != 0 || !debug;
                if wanted && sh.sh_type(e).0 != SHT_NOBITS.0 {
                    ranges.push((sh.sh_offset(e), sh.sh_offset(e).saturating_add(sh.sh_size(e))));
                }
            }
        }
        // Whole pages (the loader maps pages, so the library's image is byte for byte
        // the whole copy's), within the file; runs less than four pages apart merged
        // (fewer system calls for a few pages more).
        // SAFETY: `sysconf` reads a constant of the system.
        let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(4096);
        let mut ranges: Vec<(u64, u64)> = ranges
            .into_iter()
            .map(|(start, end)| (start / page * page, end.min(len).div_ceil(page).saturating_mul(page).min(len)))
            .filter(|(start, end)| start < end)
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1.saturating_add(4 * page) => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Ok(Some(merged))
    }

    /// Why the open file whose `statx` is `stx` can never change, if it cannot: its inode has fs-verity
    /// (never writable again: the flag cannot be removed) or is immutable (`chattr +i`:
    /// no write, truncation, rename or link until someone with `CAP_LINUX_IMMUTABLE`
    /// clears the flag). Asked of the descriptor ([`statx`], with `AT_EMPTY_PATH`), so it
    /// is the opened inode's answer, not some later occupant's of the path.
    ///
    /// A read-only mount is deliberately not trusted: `statfs`'s `ST_RDONLY` is the
    /// mount's flag *or* the superblock's, and a read-only bind mount (or a container's
    /// read-only view of a layer) of a writable file system leaves the very inode
    /// writable through another mount, which would change the mapped code under the
    /// host.
    pub(super) fn unchanging(stx: &libc::statx) -> Option<&'static str> {
        // An attribute counts only where the file system reports it (the mask).
        let has = |attr: libc::c_int| {
            let attr = attr as u64;
            stx.stx_attributes_mask & attr != 0 && stx.stx_attributes & attr != 0
        };
        if has(libc::STATX_ATTR_VERITY) {
            Some("fs-verity")
        } else if has(libc::STATX_ATTR_IMMUTABLE) {
            Some("immutable")
        } else {
            None
        }
    }

    /// The `statx` of the open `file` itself (basic fields, birth time, unique mount
    /// id, attributes), or `None` where there is none (a kernel before 4.11, a seccomp
    /// filter): then it is copied, as always, and never shared.
    pub(super) fn statx(file: &File) -> Option<libc::statx> {
        let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
        let mask = libc::STATX_BASIC_STATS | libc::STATX_BTIME | libc::STATX_MNT_ID_UNIQUE;
        // SAFETY: `statx` of the descriptor itself (empty path with `AT_EMPTY_PATH`)
        // writes one `struct statx` into `stx`, which is large enough and writable.
        let rc = unsafe { libc::statx(file.as_raw_fd(), c"".as_ptr(), libc::AT_EMPTY_PATH, mask, stx.as_mut_ptr()) };
        // SAFETY: `statx` succeeded and filled the struct (it was zeroed before anyway).
        (rc == 0).then(|| unsafe { stx.assume_init() })
    }

    /// A new, empty `memfd` named after the plugin (its name shows in
    /// `/proc/<pid>/maps`), or `None` where none can be made.
    fn create(path: &Path) -> Option<File> {
        let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // The kernel keeps at most 249 bytes of a name.
        let mut name: String = format!("tomada:{base}").chars().filter(|c| *c != '\0').take(200).collect();
        while name.len() > 240 {
            name.pop();
        }
        let name = CString::new(name).ok()?;
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        // SAFETY: `memfd_create` takes a NUL-terminated name and flags; it returns a new
        // descriptor or -1.
        let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
        if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            // A kernel before 6.3, which knows no `MFD_EXEC` (and makes every memfd
            // executable).
            // SAFETY: as above.
            fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        }
        if fd < 0 {
            return None;
        }
        // SAFETY: a fresh descriptor returned by `memfd_create`, owned by nobody else.
        Some(unsafe { File::from_raw_fd(fd) })
    }

    /// This process's number as `/proc` names it (`readlink /proc/self`), or `self`.
    /// A name with the number is one other processes (gdb) can open too.
    pub(super) fn proc_self() -> String {
        std::fs::read_link("/proc/self")
            .ok()
            .and_then(|p| p.to_str().map(str::to_owned))
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_else(|| "self".into())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileExt, MetadataExt};

    fn bytes_of(file: &PluginFile) -> Vec<u8> {
        let mut bytes = vec![0u8; file.len() as usize];
        file.file.read_exact_at(&mut bytes, 0).unwrap();
        bytes
    }

    /// A test build of the greeter carries its debug info (`.debug_*`, megabytes):
    /// the copy without it holds every byte the loader maps, the checks read and the
    /// symbol table, and none of the debug info — holes, with no memory behind them.
    #[test]
    fn a_copy_of_what_loads_leaves_the_debug_info_out() {
        let path = tomada_test_support::cdylib("greeter");
        let original = std::fs::read(&path).unwrap();
        let object = object::File::parse(&*original).unwrap();
        use object::{Object, ObjectSection, ObjectSegment};
        let debug: u64 = object
            .sections()
            .filter(|s| s.name().is_ok_and(|n| n.starts_with(".debug_")))
            .filter_map(|s| s.file_range())
            .map(|(_, size)| size)
            .sum();
        assert!(debug > original.len() as u64 / 2, "a test build is mostly debug info ({debug} of {})", original.len());

        let copy = PluginFile::open(&path, Extent::WithoutDebugInfo).unwrap();
        assert!(copy.sealed_copy() && !copy.whole());
        assert_eq!(copy.len(), original.len() as u64, "the copy keeps the file's length");
        let copied = bytes_of(&copy);
        // Everything the loader maps, byte for byte.
        for segment in object.segments() {
            let (start, size) = segment.file_range();
            let (start, end) = (start as usize, (start + size) as usize);
            assert_eq!(copied[start..end], original[start..end], "segment at {start:#x}");
        }
        // The section headers and every allocated section (the checks read them).
        for section in object.sections() {
            if let Some((start, size)) = section.file_range() {
                let (start, end) = (start as usize, (start + size) as usize);
                let allocated = matches!(section.flags(), object::SectionFlags::Elf { sh_flags, .. } if sh_flags.0 & object::elf::SHF_ALLOC.0 != 0);
                if allocated || matches!(section.name(), Ok(".shstrtab" | ".symtab" | ".strtab")) {
                    assert_eq!(copied[start..end], original[start..end], "{:?}", section.name());
                }
            }
        }
        // The debug info is not there, and takes no memory.
        let info = object.section_by_name(".debug_info").unwrap().file_range().unwrap();
        let (start, end) = ((info.0 as usize).next_multiple_of(4096), (info.0 + info.1) as usize / 4096 * 4096);
        assert!(end > start);
        assert!(copied[start..end].iter().all(|&b| b == 0), "a hole where the debug info was");
        assert!(original[start..end].iter().any(|&b| b != 0));
        let held = copy.file.metadata().unwrap().blocks() * 512;
        assert!(
            held < original.len() as u64 - debug / 2,
            "the copy holds {held} bytes of a {}-byte file",
            original.len()
        );
        // It is never hashed: its holes are not the file.
        assert_eq!(copy.read_all(|_| ()).unwrap_err().kind(), io::ErrorKind::Unsupported);

        // The whole copy is the file.
        let whole = PluginFile::open(&path, Extent::Whole).unwrap();
        assert!(whole.sealed_copy() && whole.whole());
        assert_eq!(bytes_of(&whole), original);
        let mut hashed = Vec::new();
        whole.read_all(|chunk| hashed.extend_from_slice(chunk)).unwrap();
        assert_eq!(hashed, original);
    }

    /// Whether this kernel names mounts uniquely (`STATX_MNT_ID_UNIQUE`, Linux 6.8) and
    /// `dir` is on a local file system: where shared copies exist at all. Says why not.
    fn shares_in(dir: &Path) -> bool {
        let probe = dir.join("probe");
        std::fs::write(&probe, b"x").unwrap();
        let file = File::open(&probe).unwrap();
        let meta = file.metadata().unwrap();
        let far = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        let stx = sealed::statx(&file).unwrap();
        let yes = shared::Key::of(&file, &stx, meta.len(), Extent::Whole, 0, far).is_some();
        if !yes {
            eprintln!(
                "skipped: no shared copies here (a kernel before 6.8, or {} not on ext4, xfs, btrfs, f2fs, tmpfs)",
                dir.display()
            );
        }
        yes
    }

    /// A settled file opened twice for isolated plugins gets one sealed copy while a
    /// holder lives; the same file rewritten in place (same inode, same length) and
    /// settled again gets a new copy of its new bytes while the old copy lives and
    /// keeps the old ones; an ordinary open never shares; and once every holder of a
    /// copy is gone, it is not offered any more.
    #[test]
    fn a_settled_file_shares_its_sealed_copy_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        if !shares_in(dir.path()) {
            return;
        }
        let path = dir.path().join("shared.so");
        let old = b"the first build, long enough to be more than a header.".repeat(100);
        std::fs::write(&path, &old).unwrap();
        tomada_test_support::wait_older(&path, shared::SETTLED);

        let a = PluginFile::open_shared(&path, Extent::Whole, 0).unwrap();
        let b = PluginFile::open_shared(&path, Extent::Whole, 0).unwrap();
        assert!(a.sealed_copy() && b.sealed_copy());
        assert_eq!(a.identity, b.identity, "two opens of a settled file share one copy");
        use std::os::fd::AsRawFd;
        assert_ne!(a.file.as_raw_fd(), b.file.as_raw_fd(), "each has a descriptor of its own");
        assert_eq!(bytes_of(&b), old);
        // Another extent is another copy; an ordinary open (in-process) is its own copy,
        // and so is a shared one made private.
        let other = PluginFile::open_shared(&path, Extent::WithoutDebugInfo, 0).unwrap();
        assert_ne!(other.identity, a.identity);
        let private = PluginFile::open(&path, Extent::Whole).unwrap();
        assert_ne!(private.identity, a.identity);
        let other_class = PluginFile::open_shared(&path, Extent::Whole, 1).unwrap();
        assert_ne!(other_class.identity, a.identity, "another sharing class is another copy");
        let made_private = PluginFile::open_shared(&path, Extent::Whole, 0).unwrap().private().unwrap();
        assert_ne!(made_private.identity, a.identity);
        assert!(made_private.sealed_copy() && made_private.whole());
        assert_eq!(bytes_of(&made_private), old);

        // Rewritten in place (the same inode and length, other bytes) with its
        // modification time put back (`cp -p`, `rsync --inplace -t`), then settled while
        // the first copy lives: the change time in the key, not the settling, tells
        // them apart.
        let new = b"the second build, just as long as the first one was...".repeat(100);
        assert_eq!(new.len(), old.len());
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        let writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        writer.write_all_at(&new, 0).unwrap();
        writer.set_modified(modified).unwrap();
        drop(writer);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), modified);
        tomada_test_support::wait_older(&path, shared::SETTLED);
        let c = PluginFile::open_shared(&path, Extent::Whole, 0).unwrap();
        assert_ne!(c.identity, a.identity, "a rewritten file is copied anew");
        assert_eq!(bytes_of(&c), new);
        assert_eq!(bytes_of(&a), old, "a sealed copy never changes");
        let d = PluginFile::open_shared(&path, Extent::Whole, 0).unwrap();
        assert_eq!(d.identity, c.identity, "the new copy is shared in turn");

        // Every holder of a copy gone, the file unchanged (a raw descriptor keeps the
        // copy's inode, so a new copy cannot take its number): the next open copies.
        let kept = c.file.try_clone().unwrap();
        let second = c.identity;
        drop((a, b, c, d));
        let e = PluginFile::open_shared(&path, Extent::Whole, 0).unwrap();
        assert_ne!(e.identity, second, "a copy with no holder left is not offered");
        assert_eq!(bytes_of(&e), new);
        drop(kept);

        // Its only holder made private (an in-process load) keeps it, without a second
        // copy, and it is no longer offered.
        let only = e.identity;
        let e = e.private().unwrap();
        assert_eq!(e.identity, only, "the only holder of a copy keeps it");
        let f = PluginFile::open_shared(&path, Extent::Whole, 0).unwrap();
        assert_ne!(f.identity, e.identity, "a copy made private is not offered");
    }

    /// A file changed less than [`shared::SETTLED`] before it is opened is never
    /// shared (a write in the same tick of the file clock would leave its times as
    /// they were), nor one whose length changed since its metadata was taken.
    #[test]
    fn a_file_changed_just_before_its_open_has_no_key() {
        let dir = tempfile::tempdir().unwrap();
        if !shares_in(dir.path()) {
            return;
        }
        let path = dir.path().join("fresh.so");
        std::fs::write(&path, b"bytes").unwrap();
        let file = File::open(&path).unwrap();
        let meta = file.metadata().unwrap();
        let changed = std::time::UNIX_EPOCH + std::time::Duration::new(meta.ctime() as u64, meta.ctime_nsec() as u32);
        let second = std::time::Duration::from_secs(1);
        let key_of = |extent, at| shared::Key::of(&file, &sealed::statx(&file).unwrap(), meta.len(), extent, 0, at);
        let key = |at| key_of(Extent::Whole, at);
        assert!(key(changed).is_none());
        assert!(key(changed + second).is_none());
        assert!(key(changed + shared::SETTLED - second / 100).is_none());
        let settled = key(changed + shared::SETTLED).unwrap();
        assert_eq!(Some(&settled), key(changed + 60 * second).as_ref());
        assert_ne!(Some(&settled), key_of(Extent::WithoutDebugInfo, changed + 60 * second).as_ref());
        // Grown since `meta` was taken: no key.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all_at(b"more", 5).unwrap();
        assert!(key(changed + 60 * second).is_none());
    }

    /// What is not a 64-bit ELF file of this machine, or whose header tables lie
    /// outside it, is copied whole: nothing is guessed.
    #[test]
    fn what_is_not_an_ordinary_elf_file_is_copied_whole() {
        let dir = tempfile::tempdir().unwrap();
        let greeter = std::fs::read(tomada_test_support::cdylib("greeter")).unwrap();
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("text.so", b"not a library at all, but long enough to have a header's worth of bytes in it".repeat(4)),
            // The section headers are at the end: cut, they lie outside the file.
            ("cut.so", greeter[..greeter.len() / 2].to_vec()),
        ];
        // A 32-bit ELF header (class 1).
        let mut class32 = greeter.clone();
        class32[4] = 1;
        cases.push(("class32.so", class32));
        // A section-name table said to be 2 MiB (not read for a hint).
        let mut big_names = greeter.clone();
        let word = |at: usize, n: usize| -> u64 {
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&greeter[at..at + n]);
            u64::from_le_bytes(b)
        };
        let (shoff, shstrndx) = (word(0x28, 8) as usize, word(0x3e, 2) as usize);
        let size_at = shoff + shstrndx * 64 + 32;
        big_names[size_at..size_at + 8].copy_from_slice(&(2u64 << 20).to_le_bytes());
        // At offset 0, so it lies within the file: only its size refuses it.
        big_names[size_at - 8..size_at].copy_from_slice(&0u64.to_le_bytes());
        assert!(greeter.len() > 2 << 20, "the test build is larger than the table it claims");
        cases.push(("big-names.so", big_names));
        for (name, bytes) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let file = File::open(&path).unwrap();
            assert_eq!(sealed::loaded(&file, bytes.len() as u64).unwrap(), None, "{name}");
            let copy = PluginFile::open(&path, Extent::WithoutDebugInfo).unwrap();
            assert!(copy.sealed_copy() && copy.whole(), "{name}");
            assert_eq!(bytes_of(&copy), bytes, "{name}");
        }
        // The greeter itself: a few page-aligned, merged ranges, starting at 0.
        let path = dir.path().join("greeter.so");
        std::fs::write(&path, &greeter).unwrap();
        let ranges = sealed::loaded(&File::open(&path).unwrap(), greeter.len() as u64).unwrap().unwrap();
        assert_eq!(ranges[0].0, 0);
        assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0), "{ranges:?}");
        assert!(
            ranges.iter().all(|&(s, e)| s % 4096 == 0 && (e % 4096 == 0 || e == greeter.len() as u64)),
            "{ranges:?}"
        );
        assert_eq!(ranges.last().unwrap().1, greeter.len() as u64, "the section headers end the file");
    }
}

//! One open file: a plugin is opened once, and everything after — inspection,
//! hashing, signature verification, loading — goes through that descriptor, so what
//! was checked is what runs even if someone swaps the path meanwhile.
//!
//! # How the loader gets exactly this file
//! - **Linux**: the library is loaded as `/proc/self/fd/N`, where `N` is this open
//!   descriptor. The kernel resolves that magic link to the open file itself (not to
//!   whatever the path names now), so `rename(2)` over the plugin's path, a symlink
//!   swap or a FIFO changes nothing. glibc then keys the library by device and inode
//!   as usual (a second load of the same file returns the same handle). glibc also
//!   matches libraries *by name* before opening anything, so a name
//!   `/proc/self/fd/N` must never be reused while a library of that name is still in
//!   the link map: [`PluginFile`] keeps its descriptor open for as long as the library
//!   may be loaded (see `library.rs`), parking it after `dlclose` until glibc has
//!   really unloaded it. A sealed `memfd` copy would also work but costs a copy of
//!   every plugin; it is not needed, because the descriptor already pins the inode.
//!   Caveats: the library's name in the link map (and in `dladdr`, backtraces) is
//!   `/proc/self/fd/N`, so `$ORIGIN` in its run path resolves to `/proc/self/fd`
//!   and dependencies found through `$ORIGIN` are not found: ship such dependencies
//!   where the system loader finds them. And the descriptor pins the inode, not its
//!   bytes: a writer of that very inode (not a rename) can still change it, which is
//!   what the [`TrustPolicy`](crate::TrustPolicy) permission checks are for.
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

/// A plugin file, open for reading: the one descriptor everything goes through.
#[derive(Debug)]
pub(crate) struct PluginFile {
    /// The path as the caller gave it (for messages and [`crate::Plugin::path`]).
    pub(crate) path: PathBuf,
    /// The path made absolute (what the loader uses where it takes paths).
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    pub(crate) absolute: PathBuf,
    pub(crate) file: File,
    pub(crate) meta: Metadata,
}

impl PluginFile {
    /// Opens `path` without blocking (a FIFO or device never hangs the host) and
    /// refuses anything that is not a regular, non-empty file.
    pub(crate) fn open(path: &Path) -> Result<PluginFile, LoadError> {
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
        Self::from_file(path.to_path_buf(), absolute, file)
    }

    /// Takes an open descriptor (e.g. inherited by an isolated plugin's process),
    /// with the same checks as [`PluginFile::open`].
    pub(crate) fn from_file(path: PathBuf, absolute: PathBuf, file: File) -> Result<PluginFile, LoadError> {
        let meta = file.metadata().map_err(|e| LoadError::Io { path: path.clone(), source: e })?;
        if !meta.is_file() {
            return Err(LoadError::NotAFile { path });
        }
        if meta.len() == 0 {
            return Err(LoadError::NotALibrary { path, reason: crate::error::NotLibrary::Empty });
        }
        Ok(PluginFile { path, absolute, file, meta })
    }

    /// The file's length when it was opened.
    pub(crate) fn len(&self) -> u64 {
        self.meta.len()
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
    /// since is an error.
    pub(crate) fn read_all(&self, mut sink: impl FnMut(&[u8])) -> io::Result<()> {
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
            Ok(PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd())))
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

//! Every `dlopen`/`dlsym`/`dlclose` of tomada-host lives here.

use tomada::Descriptor;
use tomada::descriptor::{Header, MAGIC};

use crate::file::PluginFile;

/// An open shared library, and the open file whose name the loader knows it by
/// (kept open while the library may be loaded: see [`crate::file`]).
#[derive(Debug)]
pub(crate) struct Library {
    handle: Option<libloading::Library>,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    name: Option<std::sync::Arc<PluginFile>>,
    /// When it was opened, in the clock of threads' start times (see `crate::unload`).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    opened: crate::unload::Since,
    /// Where the loader put it (see `crate::unload::placed`), if known.
    #[cfg(target_os = "linux")]
    placed: Option<crate::unload::Placed>,
}

impl Library {
    /// Opens exactly `file` (see [`PluginFile::loader_name`]), resolving all its
    /// symbols now (so a missing dependency is an error here, not a crash at the
    /// first call) and keeping them local (so two plugins' symbols never interpose).
    ///
    /// # Safety
    /// Opening runs the library's initialisers: conceptually the same as calling an
    /// unknown foreign function. Call it only on files that passed inspection.
    pub(crate) unsafe fn open(file: PluginFile) -> Result<Library, (std::path::PathBuf, libloading::Error)> {
        let path = file.path.clone();
        #[cfg(target_os = "linux")]
        let file = names::hold(file);
        #[cfg(not(target_os = "linux"))]
        let file = std::sync::Arc::new(file);
        let name = match file.loader_name() {
            Ok(name) => name,
            // Only where libraries load by path, when the path no longer names the
            // inspected file.
            Err(_) => return Err((path, libloading::Error::DlOpenUnknown)),
        };
        #[cfg(target_os = "linux")]
        let since = crate::unload::now();
        #[cfg(not(target_os = "linux"))]
        let since = crate::unload::Since { tick: 0, loader: 0 };
        #[cfg(unix)]
        let opened = {
            use libloading::os::unix::{Library as Unix, RTLD_LOCAL, RTLD_NOW};
            // SAFETY: the caller accepts running the library's initialisers.
            unsafe { Unix::open(Some(&name), RTLD_NOW | RTLD_LOCAL) }.map(|unix| {
                #[cfg(target_os = "linux")]
                let (unix, placed) = {
                    let raw = unix.into_raw();
                    // SAFETY: `raw` was just taken from a `Library` and is given back to one.
                    (unsafe { Unix::from_raw(raw) }, crate::unload::placed(raw))
                };
                #[cfg(not(target_os = "linux"))]
                let placed = ();
                (libloading::Library::from(unix), placed)
            })
        };
        #[cfg(not(unix))]
        // SAFETY: the caller accepts running the library's initialisers.
        let opened = unsafe { libloading::Library::new(&name) }.map(|handle| (handle, ()));
        match opened {
            #[cfg(target_os = "linux")]
            Ok((handle, placed)) => Ok(Library { handle: Some(handle), name: Some(file), opened: since, placed }),
            #[cfg(not(target_os = "linux"))]
            Ok((handle, ())) => Ok(Library { handle: Some(handle), name: Some(file), opened: since }),
            Err(e) => {
                #[cfg(target_os = "linux")]
                let _ = names::release(file, None);
                Err((path, e))
            }
        }
    }

    /// The library's exported descriptor `symbol` (see `tomada::descriptor::symbol`):
    /// `Ok(None)` if it exports none, `Err(what)` if its never-changing header is not
    /// this boundary version's.
    ///
    /// A copy: a descriptor made before [`Descriptor::create_with`] existed (smaller,
    /// as its header says) reads with `create_with: None`. Its pointers point into
    /// the library: the caller must not use them once `self` is dropped.
    pub(crate) fn descriptor(&self, symbol: &str) -> Result<Option<Descriptor>, crate::error::Mismatch> {
        let handle = self.handle.as_ref().expect("open until dropped");
        // SAFETY: we only take the symbol's address; a library without the symbol
        // gives an error, not a pointer.
        let Ok(found) = (unsafe { handle.get::<*const Descriptor>(symbol) }) else {
            return Ok(None);
        };
        let ptr: *const Descriptor = *found;
        if ptr.is_null() {
            return Ok(None);
        }
        // SAFETY: `ptr` is the address of an exported descriptor static, mapped for
        // as long as `self` is. Every boundary version starts it with the same
        // `Header`, so that much can be read before anything else is trusted.
        let header = unsafe { ptr.cast::<Header>().read_unaligned() };
        if header.magic != MAGIC || header.boundary != tomada::BOUNDARY_VERSION {
            return Err(crate::error::Mismatch::Header);
        }
        let size = header.size as usize;
        if size < Descriptor::MIN_SIZE {
            return Err(crate::error::Mismatch::DescriptorSize);
        }
        let mut copy = std::mem::MaybeUninit::<Descriptor>::zeroed();
        // SAFETY: the header says the static holds `size` bytes of this boundary
        // version's descriptor layout (at least every field before `create_with`);
        // at most `size_of::<Descriptor>()` of them are copied into `copy`, which does
        // not overlap the library's static.
        unsafe {
            std::ptr::copy_nonoverlapping(
                ptr.cast::<u8>(),
                copy.as_mut_ptr().cast::<u8>(),
                size.min(size_of::<Descriptor>()),
            );
        }
        // SAFETY: every field before `create_with` was copied from a descriptor of
        // this layout; `create_with` was copied too, or is zero, which is `None`.
        Ok(Some(unsafe { copy.assume_init() }))
    }
}

impl Library {
    /// When it was opened, and by which thread (see `crate::unload::Since`).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn opened(&self) -> crate::unload::Since {
        self.opened
    }

    /// Closes the library, with no look for hazards (done already: see
    /// `crate::unload`), and lets its name go once the loader has. `false` if the
    /// loader kept it all the same: then it is recorded as kept (see
    /// [`Library::release`]).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn close(mut self) -> bool {
        self.release()
    }

    /// Closes the handle and lets the name go (what is left of `self` drops as a
    /// library already closed: nothing to look at). If the loader keeps the library
    /// after its last handle is closed (glibc: a thread-local destructor of it is
    /// registered on a live thread), it is recorded as kept, closed, with its name
    /// (see `crate::unload::Hazard::ThreadLocalDestructor`), and `false` returned.
    fn release(&mut self) -> bool {
        drop(self.handle.take());
        #[cfg(target_os = "linux")]
        if let Some(file) = self.name.take()
            && let Some(file) = names::release(file, self.placed)
        {
            let report = crate::unload::UnloadReport {
                path: file.path.clone(),
                hazards: vec![crate::unload::Hazard::ThreadLocalDestructor],
            };
            let kept = Library { handle: None, name: Some(file), opened: self.opened, placed: self.placed };
            crate::unload::pinned(report, Vec::new(), kept);
            return false;
        }
        true
    }

    /// Whether this is a library already closed that the loader kept (see
    /// [`Library::release`]).
    #[cfg(target_os = "linux")]
    pub(crate) fn closed(&self) -> bool {
        self.handle.is_none()
    }

    /// For a closed library the loader kept: its name, to [`nudge`] the loader with,
    /// if the loader still holds it.
    #[cfg(target_os = "linux")]
    pub(crate) fn kept_name(&self) -> Option<std::ffi::CString> {
        let file = self.name.as_ref().filter(|_| self.handle.is_none())?;
        if !names::still_loaded(file, self.placed) {
            return None;
        }
        let name = file.loader_name().ok()?;
        std::ffi::CString::new(name.into_os_string().into_encoded_bytes()).ok()
    }

    /// For a closed library the loader kept: whether the loader has let it go since
    /// (its name is let go when `self` drops).
    #[cfg(target_os = "linux")]
    pub(crate) fn let_go(&self) -> bool {
        self.handle.is_none() && self.name.as_ref().is_none_or(|file| !names::still_loaded(file, self.placed))
    }
}

/// Has glibc look again at the closed libraries it keeps: a `dlopen(RTLD_NOLOAD)` of
/// the library by `name` (only found if it is still loaded under that name: nothing
/// is opened or loaded) and its `dlclose`. glibc unloads a library whose last handle
/// was closed while a thread-local destructor of it was registered only at a later
/// `dlclose` (any: it looks at every object loaded), once no such destructor is left
/// (their threads have exited); this is that `dlclose`.
#[cfg(target_os = "linux")]
pub(crate) fn nudge(name: &std::ffi::CStr) {
    // SAFETY: `name` is NUL-terminated; `RTLD_NOLOAD` loads nothing (so runs no
    // initialiser): it returns a new handle to a library already loaded under that
    // name, or null.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY) };
    if !handle.is_null() {
        // SAFETY: `handle` was just returned by `dlopen` and is closed once. If it was
        // the last one, glibc unloads what nothing holds any more (running its
        // finalisers): exactly what it would do at any other plugin's `dlclose`.
        unsafe { libc::dlclose(handle) };
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // Anything that would run the library's code once it is unmapped keeps it
        // mapped, and it is reported (see `crate::unload`); the libraries kept so
        // before are looked at again in the same look, and those found free unloaded.
        // (A closed library the loader kept drops once the loader let it go: only
        // its name is left to release.)
        #[cfg(target_os = "linux")]
        if let Some(file) = self.name.as_ref().filter(|_| self.handle.is_some()) {
            let code = crate::unload::code(file, self.placed.map(|p| p.base));
            let now = crate::unload::Subject { code: &code, since: self.opened, kept: false };
            let (hazards, _) = crate::unload::look_again(Some(now), false);
            if !hazards.is_empty() {
                let report = crate::unload::UnloadReport { path: file.path.clone(), hazards };
                // Its name stays taken, and its sealed copy open, for as long as it is mapped.
                let kept = Library {
                    handle: self.handle.take(),
                    name: self.name.take(),
                    opened: self.opened,
                    placed: self.placed,
                };
                crate::unload::pinned(report, code, kept);
                return;
            }
        }
        self.release();
    }
}

/// The names libraries are loaded by: one open descriptor per loaded file (device and
/// inode: a sealed copy is a file of its own), whose `/proc/<pid>/fd/N` every load of
/// that file uses.
///
/// glibc matches a library's *name* against its link map before it opens anything,
/// and a library can outlive `dlclose` (another handle to it, or thread-local
/// destructors). If the descriptor closed while the name was still in the map, its
/// number could be reused for another plugin, and `dlopen("/proc/<pid>/fd/N")` would
/// silently return the old library. So the descriptor stays open until the loader has
/// really let go of the file, and a file loaded again reuses its name (one descriptor
/// per file, however often it is loaded).
#[cfg(target_os = "linux")]
mod names {
    use std::collections::HashMap;
    use std::ffi::{CStr, c_int, c_void};
    use std::sync::{Arc, Mutex, OnceLock};

    use crate::file::PluginFile;
    use crate::unload::Placed;

    type Names = HashMap<(u64, u64), Arc<PluginFile>>;
    static NAMES: Mutex<Option<Names>> = Mutex::new(None);

    fn lock() -> std::sync::MutexGuard<'static, Option<Names>> {
        NAMES.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The descriptor to load `file` by: an existing one for the same file, or `file`.
    /// (Never held across `dlopen`: a plugin's initialiser may load plugins.)
    pub(super) fn hold(file: PluginFile) -> Arc<PluginFile> {
        let key = file.identity;
        let mut names = lock();
        Arc::clone(names.get_or_insert_with(HashMap::new).entry(key).or_insert_with(|| Arc::new(file)))
    }

    /// After `dlclose` (or a failed `dlopen`): closes the descriptor if nothing else
    /// holds it and the loader no longer knows the file (`placed`: where the closed
    /// library was, if it was opened). Returns `file` if nothing else holds it but the
    /// loader still does (it kept the library after its last `dlclose`: see
    /// `crate::unload::Hazard::ThreadLocalDestructor`); its name stays taken then.
    pub(super) fn release(file: Arc<PluginFile>, placed: Option<Placed>) -> Option<Arc<PluginFile>> {
        let key = file.identity;
        let mut names = lock();
        let entry = names.as_mut().and_then(|map| map.get(&key));
        // Another library of the same file holds the name (the loader keeps the
        // library for that one's handle); or it was never recorded.
        // (`file` is dropped under the lock: of two libraries of the same file
        // released at once, the second sees the first gone.)
        if entry.is_none_or(|entry| !Arc::ptr_eq(entry, &file) || Arc::strong_count(entry) > 2) {
            drop(file);
            return None;
        }
        if still_loaded(&file, placed) {
            return Some(file);
        }
        drop(file);
        if let Some(map) = names.as_mut() {
            map.remove(&key);
        }
        None
    }

    /// Whether the loader still holds the library closed (a library can outlive
    /// `dlclose`: see above). Asked of glibc's index of loaded objects by address
    /// (`_dl_find_object`, glibc 2.35: a search, not a walk of every library) where
    /// it is known where the library was; else the link map is walked for its name.
    pub(super) fn still_loaded(file: &PluginFile, placed: Option<Placed>) -> bool {
        match placed.zip(find_object()) {
            Some((placed, find)) => {
                let mut found = DlFindObject::default();
                // SAFETY: `_dl_find_object` reads no memory at the address it is given
                // (it compares it with the ranges of loaded objects) and writes one
                // `struct dl_find_object` into `found` (larger than glibc's: see
                // `DlFindObject`).
                let r = unsafe { find(placed.dynamic as *mut c_void, &mut found) };
                // The library still holds its dynamic section's address: the same
                // link map entry is still found there. (Anything else there means it
                // is gone: loaded objects never overlap.)
                r == 0 && found.link_map == placed.map
            }
            None => named(file),
        }
    }

    /// glibc's `struct dl_find_object` (<dlfcn.h>) as far as it is read, and room
    /// beyond its end for the fields some architectures add before its reserved words.
    #[repr(C)]
    #[derive(Default)]
    struct DlFindObject {
        flags: u64,
        map_start: usize,
        map_end: usize,
        link_map: usize,
        rest: [u64; 16],
    }

    type FindObject = unsafe extern "C" fn(*mut c_void, *mut DlFindObject) -> c_int;

    /// glibc's `_dl_find_object`, looked up once (it is missing before glibc 2.35).
    fn find_object() -> Option<FindObject> {
        static FOUND: OnceLock<Option<FindObject>> = OnceLock::new();
        *FOUND.get_or_init(|| {
            // SAFETY: `dlsym` with a NUL-terminated name; a missing symbol is null.
            let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr()) };
            // SAFETY: glibc's `_dl_find_object` has exactly this signature.
            (!f.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, FindObject>(f) })
        })
    }

    /// Whether the loader's link map still holds a library by `file`'s loader name.
    /// Walks the link map (`dl_iterate_phdr`): no system call, unlike asking
    /// `dlopen(RTLD_NOLOAD)`, which opens the file again to compare its inode.
    pub(super) fn named(file: &PluginFile) -> bool {
        let Ok(name) = file.loader_name() else { return false };
        let Ok(name) = std::ffi::CString::new(name.into_os_string().into_encoded_bytes()) else { return false };
        unsafe extern "C" fn same_name(info: *mut libc::dl_phdr_info, _size: usize, wanted: *mut c_void) -> c_int {
            // SAFETY: the loader passes a valid `info` for the duration of this call, and
            // `wanted` is the `&CStr` passed to `dl_iterate_phdr` below.
            let (info, wanted) = unsafe { (&*info, *wanted.cast::<&CStr>()) };
            if info.dlpi_name.is_null() {
                return 0;
            }
            // SAFETY: a NUL-terminated name the loader keeps for the duration of the call.
            c_int::from(unsafe { CStr::from_ptr(info.dlpi_name) } == wanted)
        }
        let mut wanted: &CStr = &name;
        // SAFETY: the callback only reads `info` and `wanted`, both valid during the
        // walk; it stops the walk (non-zero) at the first library of that name.
        unsafe { libc::dl_iterate_phdr(Some(same_name), (&raw mut wanted).cast()) != 0 }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A library's code found from its own program headers and where the loader put
    /// it is exactly its executable mappings as `/proc/self/maps` lists them, and so
    /// is the code its inspection found (kept with the file, so an unload reads no
    /// headers again).
    #[test]
    fn the_code_from_the_headers_is_the_executable_mappings() {
        let path = tomada_test_support::cdylib("greeter");
        let plugin = PluginFile::open(&path, crate::file::Extent::Whole).unwrap();
        assert!(plugin.code().is_none(), "nothing kept before the inspection");
        crate::inspect::inspect_file(&plugin).unwrap();
        assert!(plugin.code().is_some_and(|code| !code.is_empty()));
        // SAFETY: `greeter` is a tomada plugin (a fixture of this repository).
        let library = unsafe { Library::open(plugin) }.unwrap();
        let file = library.name.as_ref().unwrap();
        assert!(file.unchanging(), "a sealed copy");
        let base = library.placed.expect("glibc's dlinfo gives the load address").base;
        let headers = crate::unload::segments(file, base).unwrap();
        let (dev, ino) = file.identity;
        let maps = crate::unload::mapped_code(dev, ino);
        assert!(!maps.is_empty());
        assert_eq!(headers, maps);
        assert_eq!(crate::unload::place(file.code().unwrap(), base).unwrap(), maps, "kept by the inspection");
        assert_eq!(crate::unload::code(file, Some(base)), maps);
        // Without the load address (no `dlinfo`), the maps are read instead.
        assert_eq!(crate::unload::code(file, None), maps);
        // A file that could change keeps nothing: its headers may not be what loaded.
        let in_place = PluginFile::open_to_read(&path).unwrap();
        crate::inspect::inspect_file(&in_place).unwrap();
        assert!(in_place.code().is_none());
    }

    /// A library closed is found gone by glibc's index of objects, by address, as
    /// by its name in the link map; one open is found by both.
    #[test]
    fn a_closed_library_is_gone_by_address_as_by_name() {
        let path = tomada_test_support::cdylib("greeter");
        // SAFETY: `greeter` is a tomada plugin (a fixture of this repository).
        let library = unsafe { Library::open(PluginFile::open(&path, crate::file::Extent::Whole).unwrap()) }.unwrap();
        // Holding the file keeps its descriptor, and so its name, valid.
        let file = std::sync::Arc::clone(library.name.as_ref().unwrap());
        let placed = library.placed;
        assert!(placed.is_some());
        assert!(names::named(&file));
        assert!(names::still_loaded(&file, placed));
        drop(library);
        if crate::unload::pinned_libraries().iter().any(|r| r.path == path) {
            // Kept mapped (a word on another test's stack): nothing to compare.
            return;
        }
        assert!(!names::named(&file));
        assert!(!names::still_loaded(&file, placed));
    }
}

//! Every `dlopen`/`dlsym` of tomada-host lives here.

use std::path::Path;

use tomada::Descriptor;
use tomada::descriptor::{Header, MAGIC};

/// An open shared library.
#[derive(Debug)]
pub(crate) struct Library(libloading::Library);

impl Library {
    /// Opens the library, resolving all its symbols now (so a missing dependency is
    /// an error here, not a crash at the first call) and keeping them local (so two
    /// plugins' symbols never interpose).
    ///
    /// # Safety
    /// Opening runs the library's initialisers: conceptually the same as calling an
    /// unknown foreign function. Call it only on files that passed inspection.
    pub(crate) unsafe fn open(path: &Path) -> Result<Library, libloading::Error> {
        #[cfg(unix)]
        {
            use libloading::os::unix::{Library as Unix, RTLD_LOCAL, RTLD_NOW};
            // SAFETY: the caller accepts running the library's initialisers.
            unsafe { Unix::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map(|l| Library(l.into()))
        }
        #[cfg(not(unix))]
        {
            // SAFETY: the caller accepts running the library's initialisers.
            unsafe { libloading::Library::new(path) }.map(Library)
        }
    }

    /// The library's exported descriptor: `Ok(None)` if it exports none, `Err(what)`
    /// if its never-changing header is not this boundary version's.
    ///
    /// The reference lives as long as `self`; the caller must not keep it longer.
    pub(crate) fn descriptor(&self) -> Result<Option<&Descriptor>, &'static str> {
        // SAFETY: we only take the symbol's address; a library without the symbol
        // gives an error, not a pointer.
        let Ok(symbol) = (unsafe { self.0.get::<*const Descriptor>(tomada::descriptor::SYMBOL) }) else {
            return Ok(None);
        };
        let ptr: *const Descriptor = *symbol;
        if ptr.is_null() {
            return Ok(None);
        }
        // SAFETY: `ptr` is the address of the exported static `TOMADA_DESCRIPTOR`,
        // mapped for as long as `self` is. Every boundary version starts it with the
        // same `Header`, so that much can be read before anything else is trusted.
        let header = unsafe { ptr.cast::<Header>().read_unaligned() };
        if header.magic != MAGIC || header.boundary != tomada::BOUNDARY_VERSION {
            return Err("header");
        }
        if (header.size as usize) < size_of::<Descriptor>() {
            return Err("descriptor size");
        }
        // SAFETY: the header says this is a whole descriptor of this boundary
        // version's layout, as `tomada::export!` makes it (a static, so aligned).
        Ok(unsafe { ptr.as_ref() })
    }
}

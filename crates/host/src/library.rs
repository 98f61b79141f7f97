//! Every `dlopen`/`dlsym` of tomada-host lives here.

use std::path::Path;

use tomada::Descriptor;

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

    /// The library's exported descriptor, if it has one.
    ///
    /// The reference lives as long as `self`; the caller must not keep it longer.
    pub(crate) fn descriptor(&self) -> Option<&Descriptor> {
        // SAFETY: we only take the symbol's address (`*const Descriptor`) and read it
        // after checking its header (see the caller); a library without the symbol
        // gives an error, not a pointer.
        let symbol = unsafe { self.0.get::<*const Descriptor>(tomada::descriptor::SYMBOL) }.ok()?;
        let ptr: *const Descriptor = *symbol;
        // SAFETY: `ptr` is the address of the exported static `TOMADA_DESCRIPTOR`,
        // which lives in the library's image, mapped for as long as `self` is. Its
        // type is what `tomada::export!` declares; the manifest inspected before
        // loading promised this boundary version, and the caller checks the header
        // against it before using any other field.
        unsafe { ptr.as_ref() }
    }
}

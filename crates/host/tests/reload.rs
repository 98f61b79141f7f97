//! Living plugins: a loaded image nothing can change (the file overwritten in place,
//! renamed over or deleted under a running host, in both modes), debuggers that name
//! plugin frames, and reloading (`tomada_host::Reloadable`). Every plugin is a real
//! build of `tests/plugins/living`, in two versions.

#![allow(missing_docs)]
#![cfg(target_os = "linux")]

#[path = "reload/hazards.rs"]
mod hazards;
#[path = "reload/image.rs"]
mod image;
#[path = "reload/reloading.rs"]
mod reloading;
#[path = "reload/watching.rs"]
mod watching;

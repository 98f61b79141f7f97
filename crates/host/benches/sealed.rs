//! What the sealed image costs a load (issue 18): one short same-run comparison of
//! - `raw_dlopen`: `dlopen(path)` + `dlclose` of a fresh copy;
//! - `fd_dlopen`: `open` + `dlopen("/proc/self/fd/N")` + `dlclose` — the route
//!   tomada's load took before the sealed copy;
//! - `sealed_dlopen`: `open` + `memfd_create` + in-kernel copy + seals +
//!   `dlopen("/proc/<pid>/fd/N")` + `dlclose` — the route it takes now;
//! - `tomada_load`: `tomada_host::load` + drop (sealed: inspection, checks, load,
//!   create, destroy, the unload's hazard checks, unload);
//! - `sealed_copy_only`: the sealed copy alone (`open`, `memfd_create`, copy, seals);
//! - `sealed_copy_fallocate`: the same with the `memfd`'s pages allocated first
//!   (`fallocate`) and `sendfile` straight away (no `copy_file_range` tried first): a
//!   cheaper copy, if the kernel's per-page work could be batched;
//! - `read_only`: `open` + reading the file into a buffer (no `memfd`): what copying
//!   the bytes costs without the `memfd`'s pages;
//! - `hash_pread` / `hash_mapped`: a sealed copy, then its BLAKE2b-512 (a trust
//!   policy's pass over the file) through 256 KiB `pread`s (tomada's route) or
//!   through a read-only `MAP_POPULATE` mapping of the copy (tried: within 0–9%, the
//!   hash itself is the cost; not adopted); the hashing alone is each minus
//!   `sealed_copy_only`.
//!
//! The load before the sealed copy is estimated as `tomada_load - (sealed_dlopen -
//! fd_dlopen)`. Rounds interleave them all (so drift in the machine's load affects
//! them alike); each iteration loads a distinct copy (glibc would return an open
//! library again). Run: `cargo bench -p tomada-host --bench sealed`.

#![allow(missing_docs)]

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pluginapi::Greeter;
use tomada_test_support::Build;

fn main() {
    #[cfg(target_os = "linux")]
    run();
}

fn dl(name: &str) {
    let name = CString::new(name).unwrap();
    // SAFETY: opens a fixture of this workspace (initialisers are any Rust cdylib's)
    // and closes it again.
    unsafe {
        let handle = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        assert!(!handle.is_null(), "dlopen {name:?}");
        libc::dlclose(handle);
    }
}

fn sealed(path: &Path, presized: bool) -> std::fs::File {
    let file = std::fs::File::open(path).unwrap();
    // SAFETY: creates a new memfd; the name is NUL-terminated.
    let fd = unsafe { libc::memfd_create(c"bench".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    assert!(fd >= 0);
    // SAFETY: a fresh descriptor, owned here.
    let mut copy = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    if presized {
        let len = file.metadata().unwrap().len();
        // SAFETY: allocates the memfd's pages; both descriptors are open.
        assert_eq!(unsafe { libc::fallocate(copy.as_raw_fd(), 0, 0, len as libc::off_t) }, 0);
        let mut offset: libc::off_t = 0;
        while (offset as u64) < len {
            // SAFETY: copies from `file` at `offset` into the memfd; both are open.
            let n = unsafe {
                libc::sendfile(copy.as_raw_fd(), file.as_raw_fd(), &mut offset, len as usize - offset as usize)
            };
            assert!(n > 0);
        }
    } else {
        std::io::copy(&mut &file, &mut copy).unwrap();
    }
    let all = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: seals the memfd made above.
    assert_eq!(unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, all) }, 0);
    copy
}

/// BLAKE2b-512 of `file`, through `pread`s or a mapping.
#[cfg(target_os = "linux")]
fn hash(file: std::fs::File, mapped: bool) -> blake2b_simd::Hash {
    use std::os::unix::fs::FileExt;
    let len = file.metadata().unwrap().len() as usize;
    let mut state = blake2b_simd::Params::new().hash_length(64).to_state();
    if mapped {
        // SAFETY: a read-only mapping of the sealed copy (it cannot shrink or change),
        // unmapped below before `file` closes.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED);
        // SAFETY: `ptr` maps `len` readable bytes until the `munmap` below.
        let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
        bytes.chunks(256 * 1024).for_each(|c| {
            state.update(c);
        });
        // SAFETY: the mapping made above; `bytes` is not used after this.
        unsafe { libc::munmap(ptr, len) };
    } else {
        let mut buf = vec![0u8; 256 * 1024];
        let mut offset = 0;
        while offset < len {
            let n = (len - offset).min(buf.len());
            file.read_exact_at(&mut buf[..n], offset as u64).unwrap();
            state.update(&buf[..n]);
            offset += n;
        }
    }
    state.finalize()
}

#[cfg(target_os = "linux")]
fn run() {
    const ROUNDS: usize = 5;
    const PER_ROUND: usize = 40;
    let src = Build::new("greeter").release().cdylib();
    let dir = tempfile::tempdir().unwrap();
    let pid = std::process::id();
    let mut totals = [Duration::ZERO; 9];
    let names = [
        "raw_dlopen",
        "fd_dlopen",
        "sealed_dlopen",
        "tomada_load",
        "sealed_copy_only",
        "sealed_copy_fallocate",
        "read_only",
    ];
    for round in 0..ROUNDS {
        for (k, total) in totals.iter_mut().enumerate() {
            let copies: Vec<PathBuf> = (0..PER_ROUND)
                .map(|i| tomada_test_support::copy_to(&src, dir.path(), &format!("r{round}-{k}-{i}.so")))
                .collect();
            let start = Instant::now();
            for copy in &copies {
                match k {
                    0 => dl(copy.to_str().unwrap()),
                    1 => {
                        let f = std::fs::File::open(copy).unwrap();
                        dl(&format!("/proc/self/fd/{}", f.as_raw_fd()));
                    }
                    2 => {
                        let f = sealed(copy, false);
                        dl(&format!("/proc/{pid}/fd/{}", f.as_raw_fd()));
                    }
                    3 => drop(tomada_host::load::<dyn Greeter>(copy).unwrap()),
                    4 => drop(sealed(copy, false)),
                    5 => drop(sealed(copy, true)),
                    7 => drop(hash(sealed(copy, false), false)),
                    8 => drop(hash(sealed(copy, false), true)),
                    _ => {
                        use std::io::Read;
                        let mut bytes = Vec::new();
                        std::fs::File::open(copy).unwrap().read_to_end(&mut bytes).unwrap();
                        drop(bytes);
                    }
                }
            }
            *total += start.elapsed();
            for copy in copies {
                let _ = std::fs::remove_file(copy);
            }
        }
    }
    let n = (ROUNDS * PER_ROUND) as u32;
    let each: Vec<Duration> = totals.iter().map(|t| *t / n).collect();
    for (name, t) in names.iter().zip(&each) {
        println!("{name:>14}: {:>9.1} µs per load", t.as_secs_f64() * 1e6);
    }
    let raw = each[0].as_secs_f64();
    let before = each[3].as_secs_f64() - (each[2].as_secs_f64() - each[1].as_secs_f64());
    println!("tomada_load (sealed) / raw_dlopen: {:.2}x", each[3].as_secs_f64() / raw);
    println!("estimated load before the sealed copy / raw_dlopen: {:.2}x", before / raw);
    println!("sealed_dlopen / fd_dlopen: {:.2}x", each[2].as_secs_f64() / each[1].as_secs_f64());
    println!("sealed_copy_fallocate / sealed_copy_only: {:.2}x", each[5].as_secs_f64() / each[4].as_secs_f64());
    println!("read_only / sealed_copy_only: {:.2}x", each[6].as_secs_f64() / each[4].as_secs_f64());
    let (pread, mapped) = (each[7].saturating_sub(each[4]), each[8].saturating_sub(each[4]));
    println!(
        "hashing alone: pread {:.1} µs, mapped {:.1} µs: mapped / pread {:.2}x",
        pread.as_secs_f64() * 1e6,
        mapped.as_secs_f64() * 1e6,
        mapped.as_secs_f64() / pread.as_secs_f64()
    );
    println!("size of the copied file: {} bytes", std::fs::metadata(&src).unwrap().len());
}

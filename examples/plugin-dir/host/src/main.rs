//! The host of the `plugin-dir` example: `plugin-dir-host DIR [TEXT]` loads every
//! [`Filter`] plugin in `DIR`, in file-name order, and runs `TEXT` through each.
//!
//! A library that is not a filter (another contract, another ABI, not a plugin at
//! all) is refused from what its file says, before any of its code runs; the host
//! reports it on stderr and goes on with the others.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use plugin_dir_api::Filter;
use tomada_host::Plugin;

/// The libraries in `dir` (`*.so`, `*.dylib` or `*.dll` for this platform), sorted.
fn libraries(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !name.starts_with('.') && name.ends_with(std::env::consts::DLL_SUFFIX) && path.is_file() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn run(dir: &Path, text: &str) -> Result<(), Box<dyn Error>> {
    let mut filters: Vec<Plugin<dyn Filter>> = Vec::new();
    for path in libraries(dir)? {
        let file = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        match tomada_host::load::<dyn Filter>(&path) {
            Ok(filter) => {
                let info = filter.info();
                println!("loaded {} {} from {file}: {}", info.name, info.version, info.description);
                filters.push(filter);
            }
            // `LoadError` says which file, what was expected, what was found.
            Err(e) => eprintln!("skipped {file}: {e}"),
        }
    }
    if filters.is_empty() {
        return Err(format!("no filter plugin in `{}`", dir.display()).into());
    }
    println!("input: {text}");
    let mut text = text.to_owned();
    for filter in &filters {
        text = filter.apply(&text)?;
        println!("after {}: {text}", filter.info().name);
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: plugin-dir-host DIR [TEXT] (e.g. target/debug)");
        return ExitCode::from(2);
    };
    let text = args.next().unwrap_or_else(|| "hello plugin world".to_owned());
    match run(Path::new(&dir), &text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

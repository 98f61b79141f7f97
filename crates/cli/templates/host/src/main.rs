//! @name@'s host: loads a plugin built against `@crate@_contract` and calls it, in this
//! process or, with `--isolate`, in a child process where its crashes and hangs
//! cannot hurt the host.
//!
//! Usage: `@name@-host [--isolate] [PLUGIN]`. PLUGIN defaults to the plugin that
//! `cargo build` puts beside this executable.

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use @crate@_contract::{Greeter, tomada};
use tomada_host::CallError;
use tomada_host::isolate::{Isolation, Mode};

// Records the contract this host expects in its executable, so that
// `tomada diff PLUGIN HOST` checks a plugin against it without running either.
tomada::expects!(Greeter);

fn run(plugin: &Path, isolate: bool) -> Result<(), Box<dyn Error>> {
    let mode = if isolate {
        // The plugin runs in a child process (this executable, re-run): a crash, an
        // abort or a call past its deadline there is an error value here. Also
        // `.memory_limit(..)`, `.crash_budget(..)`, `.sandbox(Sandbox::strict())`.
        Mode::Isolated(Isolation::new().deadline(Duration::from_secs(10)))
    } else {
        Mode::InProcess
    };
    // Everything (contract, ABI, the layout of every method) is checked from the file
    // before any of the plugin's code runs; a `LoadError` says what does not fit.
    let greeter = tomada_host::load_with::<dyn Greeter>(plugin, &mode)?;
    let info = greeter.info();
    let place = if greeter.process_id().is_some() {
        "in a child process"
    } else {
        "in this process"
    };
    println!("loaded {} {} {place}", info.name, info.version);

    // A call returns `Result<_, CallError>`; the contract's own `Result` is inside.
    println!("{}", greeter.greet("Mundo")??);
    match greeter.greet("")? {
        Ok(greeting) => println!("{greeting}"),
        Err(why) => println!("refused: {why}"),
    }

    // An `async fn` of the contract is a future, awaited with any executor.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    println!("{}", runtime.block_on(greeter.greet_later("async"))?);

    // A panic in the plugin is an error value, and the plugin stays usable.
    match greeter.greet("panic") {
        Err(CallError::Panicked { message }) => println!("the plugin panicked: {message}"),
        other => println!("expected a panic, got {other:?}"),
    }
    println!("{}", greeter.greet("de novo")??);
    Ok(())
}

/// The plugin `cargo build` puts beside this executable.
fn default_plugin() -> PathBuf {
    let file = format!("{DLL_PREFIX}@crate@_plugin{DLL_SUFFIX}");
    match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(file),
        Err(_) => PathBuf::from(file),
    }
}

fn main() -> ExitCode {
    // First thing: an isolated plugin's child process is this executable, re-run; it
    // serves the plugin here and never returns.
    tomada_host::isolate::serve_if_runner();

    let mut isolate = false;
    let mut plugin = None;
    for arg in std::env::args_os().skip(1) {
        match arg.to_str() {
            Some("--isolate") => isolate = true,
            Some("-h" | "--help") => {
                println!("usage: @name@-host [--isolate] [PLUGIN]");
                return ExitCode::SUCCESS;
            }
            _ if plugin.is_none() => plugin = Some(PathBuf::from(arg)),
            _ => {
                eprintln!("usage: @name@-host [--isolate] [PLUGIN]");
                return ExitCode::from(2);
            }
        }
    }
    let plugin = plugin.unwrap_or_else(default_plugin);
    match run(&plugin, isolate) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

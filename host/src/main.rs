//! `host --plugin PATH [--name NAME]`: loads a greeter plugin, checks that it speaks
//! the `pluginapi::Greeter` contract, and prints its greeting.
//! `host --plugin-dir DIR`: the same for every plugin in a directory. A library
//! that exports several greeters greets with each.
//! `--isolate`: each plugin runs in a child process (this same executable).
//! `--trusted-key FILE` (repeatable): a trust policy; only plugins signed
//! (`PLUGIN.minisig`) by one of these minisign keys load, and only if no one but
//! their owner can change them.
//!
//! `--watch` (with `--plugin`): keeps running, and each time the plugin's file is
//! rebuilt or replaced, loads the new version through every check and greets with
//! it (the log line and greeting again); a replacement that is refused is one log
//! line saying why, and the version before keeps serving. SIGINT or SIGTERM (Ctrl-C)
//! ends it with status 0.
//!
//! Like the Go original's, the first line is a log line on stderr with a local
//! `YYYY/MM/DD HH:MM:SS` prefix; the greeting goes to stdout. Any failure is one
//! line on stderr and exit status 1.

use std::collections::HashMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use pluginapi::Greeter;
use tomada_host::isolate::{Isolation, Mode};
use tomada_host::{Loader, TrustPolicy};

tomada_host::tomada::global_allocator!();
// Records in this executable the contract it expects, for `tomada diff`.
tomada_host::tomada::expects!(pluginapi::Greeter);

/// Loads greeter plugins and greets.
#[derive(Parser, Debug)]
#[command(version, about)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["plugin", "plugin_dir"]))]
struct Args {
    /// Path of the plugin library, e.g. bin/greeter_v1.so
    #[arg(long, value_name = "PATH")]
    plugin: Option<PathBuf>,
    /// Load every plugin in DIR, in file-name order: files ending in the platform's
    /// library suffix (.so); hidden files, subdirectories and other files are skipped;
    /// symlinks are followed, and a library reached twice is loaded once. A refused
    /// file is reported and the rest still run; the exit status is 1 if any was refused.
    #[arg(long, value_name = "DIR")]
    plugin_dir: Option<PathBuf>,
    /// Who to greet
    #[arg(long, default_value = "Mundo")]
    name: String,
    /// Run each plugin in a child process of its own: a crash, hang or runaway
    /// allocation there is an error here, not the end of the host
    #[arg(long)]
    isolate: bool,
    /// Trust plugins signed by this minisign public key (repeatable). With any, a
    /// plugin loads only with a good signature (`PLUGIN.minisig`) by one of them.
    #[arg(long, value_name = "FILE")]
    trusted_key: Vec<PathBuf>,
    /// Keep running and greet again with each new version of the plugin's file as it
    /// is rebuilt; a refused version is reported and the old one keeps serving.
    /// SIGINT/SIGTERM end it (status 0)
    #[arg(long, requires = "plugin")]
    watch: bool,
}

/// Go's `log` package format: `2025/08/15 10:31:07 message`, on stderr. Control
/// characters are escaped: much of what is logged (names, descriptions, the
/// plugins' own output, error messages) comes from plugins, which must not forge
/// log lines or drive the terminal.
fn log(message: &str) {
    let message = tomada_host::escape::escape_controls(message);
    eprintln!("{} {message}", chrono::Local::now().format("%Y/%m/%d %H:%M:%S"));
}

/// The error and its causes on one line: `error: a: b: c`.
fn one_line(err: &dyn Error) -> String {
    let mut line = format!("error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line.replace('\n', " ")
}

/// Loads the greeter plugin(s) of one library — every greeter it exports, if it
/// exports several — logs each and prints its greeting.
fn greet_with(loader: &Loader, path: &Path, name: &str, mode: &Mode) -> Result<(), Box<dyn Error>> {
    let inspected = loader.inspect(path)?;
    let greeters: Vec<String> = inspected
        .exports()
        .iter()
        .filter(|e| e.manifest.contract.name == <dyn Greeter as tomada_host::Contract>::NAME)
        .map(|e| e.manifest.info.name.clone())
        .collect();
    if greeters.len() <= 1 {
        return greet_one(inspected, name, mode);
    }
    // Each by name (the file is opened and verified again for each); every one is
    // tried, the first failure is returned and later ones are logged.
    let mut first_error: Option<Box<dyn Error>> = None;
    for export in greeters {
        let result = match loader.inspect(path) {
            Ok(inspected) => greet_one(inspected.export(export), name, mode),
            Err(e) => Err(e.into()),
        };
        match (result, &first_error) {
            (Ok(()), _) => {}
            (Err(e), None) => first_error = Some(e),
            (Err(e), Some(_)) => log(&one_line(e.as_ref())),
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Loads one export, logs it, prints its greeting.
fn greet_one(inspected: tomada_host::Inspected, name: &str, mode: &Mode) -> Result<(), Box<dyn Error>> {
    let checked = inspected.check::<dyn Greeter>()?;
    let plugin = match mode {
        Mode::InProcess => checked.load()?,
        Mode::Isolated(options) => checked.isolate(options)?,
        // (`Mode::Remote`, with tomada-host's `remote` feature, which this demo leaves off.)
        _ => return Err("this demo loads plugin files; a remote plugin is loaded by name with `Loader::load`".into()),
    };
    announce(&plugin, name)
}

/// Logs a loaded plugin and prints its greeting.
fn announce(plugin: &tomada_host::Plugin<dyn Greeter>, name: &str) -> Result<(), Box<dyn Error>> {
    let info = plugin.info();
    log(&format!(
        "Plugin carregado: {} v{} (ABI={}) — {}",
        info.name,
        info.version,
        plugin.manifest().contract.abi,
        info.description
    ));
    let greeting = plugin.greet(name).map_err(|e| format!("plugin `{}` failed to greet: {e}", info.name))?;
    println!("{}", tomada_host::escape::escape_controls(&greeting));
    Ok(())
}

/// What `--watch` waits for.
enum Watched {
    Event(tomada_host::ReloadEvent),
    Stop,
}

/// `--watch`: greets with the plugin, then with each new version as its file is
/// replaced, until SIGINT/SIGTERM.
fn watch(loader: &Loader, path: &Path, name: &str) -> Result<(), Box<dyn Error>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = tx.clone();
    // Set first: a signal from here on ends the loop below, not the process.
    ctrlc::set_handler(move || {
        let _ = stop.send(Watched::Stop);
    })
    .map_err(|e| format!("cannot handle SIGINT/SIGTERM: {e}"))?;
    let plugin: tomada_host::Reloadable<dyn Greeter> = loader.reloadable(path)?;
    let events = plugin.events();
    let _watch = plugin.watch()?;
    std::thread::spawn(move || {
        for event in events {
            if tx.send(Watched::Event(event)).is_err() {
                break;
            }
        }
    });
    announce(&plugin.current(), name)?;
    while let Ok(message) = rx.recv() {
        match message {
            Watched::Stop => break,
            Watched::Event(tomada_host::ReloadEvent::Reloaded { .. }) => {
                // A version that loads but fails to greet is reported; the watch goes on.
                if let Err(e) = announce(&plugin.current(), name) {
                    log(&one_line(e.as_ref()));
                }
            }
            Watched::Event(tomada_host::ReloadEvent::Refused { why, .. }) => {
                let serving = plugin.current();
                let info = serving.info();
                let why = one_line(&*why);
                let why = why.strip_prefix("error: ").unwrap_or(&why);
                log(&format!("refused the new version: {why} ({} v{} keeps serving)", info.name, info.version));
            }
            Watched::Event(_) => {}
        }
    }
    Ok(())
}

/// The plugin candidates in `dir`, in a stable order (see `--plugin-dir`).
fn candidates(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read plugin directory `{}`: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read plugin directory `{}`: {e}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(std::env::consts::DLL_SUFFIX) {
            continue;
        }
        // `metadata` follows symlinks; a dangling one is kept, to be reported.
        if entry.path().metadata().is_ok_and(|m| m.is_dir()) {
            continue;
        }
        paths.push(entry.path());
    }
    paths.sort();
    Ok(paths)
}

fn run_dir(loader: &Loader, dir: &Path, name: &str, mode: &Mode) -> Result<bool, Box<dyn Error>> {
    let paths = candidates(dir)?;
    if paths.is_empty() {
        return Err(format!("no plugin (`*{}`) in `{}`", std::env::consts::DLL_SUFFIX, dir.display()).into());
    }
    let mut seen: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut all_ok = true;
    for path in paths {
        if let Ok(real) = path.canonicalize() {
            if let Some(first) = seen.get(&real) {
                log(&format!("skipped `{}`: the same library as `{}`", path.display(), first.display()));
                continue;
            }
            seen.insert(real, path.clone());
        }
        if let Err(e) = greet_with(loader, &path, name, mode) {
            log(&one_line(e.as_ref()));
            all_ok = false;
        }
    }
    Ok(all_ok)
}

fn main() -> ExitCode {
    // With --isolate this executable is also the plugins' runner: a child started
    // for a plugin serves it here and never returns.
    tomada_host::isolate::serve_if_runner();
    let args = Args::parse();
    let mode = if args.isolate {
        // Plugins' own output goes to the log, prefixed with their name.
        Mode::Isolated(Isolation::new().on_output(|plugin, _, line| log(&format!("[{plugin}] {line}"))))
    } else {
        Mode::InProcess
    };
    let loader = if args.trusted_key.is_empty() {
        Loader::new()
    } else {
        let mut policy = TrustPolicy::new();
        for key in &args.trusted_key {
            policy = match policy.trust_key_file(key) {
                Ok(p) => p,
                Err(e) => {
                    log(&one_line(&e));
                    return ExitCode::FAILURE;
                }
            };
        }
        Loader::with_policy(policy)
    };
    let result = match (&args.plugin, &args.plugin_dir) {
        (Some(path), _) if args.watch => watch(&loader.mode(mode), path, &args.name).map(|()| true),
        (Some(path), _) => greet_with(&loader, path, &args.name, &mode).map(|()| true),
        (None, Some(dir)) => run_dir(&loader, dir, &args.name, &mode),
        (None, None) => unreachable!("clap requires one of --plugin and --plugin-dir"),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            log(&one_line(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

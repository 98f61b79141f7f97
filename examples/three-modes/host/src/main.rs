//! The host of the `three-modes` example: `three-modes-host PLUGIN` loads one word
//! counting plugin three ways — in this process, in a child process, and from a
//! server over TLS (here a server this program starts on 127.0.0.1, standing for
//! another machine) — and makes the same calls through the same `Plugin<dyn Words>`.
//! What differs is what each costs (a call's time, printed) and what each protects
//! (an `abort` in the plugin: fatal in-process, an error value isolated or remote).

use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use three_modes_api::{Each, Words};
use tomada_host::Plugin;
use tomada_host::isolate::{Isolation, Mode};

const TEXT: &str = "the cat saw the dog and the dog saw the cat";

/// The host's callback: counts the words the plugin sends back.
#[derive(Default)]
struct Tally(AtomicU64);

impl Each for Tally {
    fn word(&self, _: &str) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The same calls, whatever the mode; `crash` only where a crash is survivable.
fn exercise(plugin: &Plugin<dyn Words>, crash: bool) -> Result<(), Box<dyn Error>> {
    let here = plugin.process()? == std::process::id();
    println!("  runs in this process: {here}");
    let top: Vec<String> = plugin.count(TEXT)?.iter().take(3).map(|(w, n)| format!("{w}={n}")).collect();
    println!("  count: {}", top.join(", "));
    let tally = Tally::default();
    let sent = plugin.each(TEXT, &tally)?;
    println!("  each: {sent} words sent, {} called back", tally.0.load(Ordering::Relaxed));
    // What a call costs here (a reader's figure, not a benchmark: see docs/benchmarks.md).
    let calls = 1_000u32;
    let start = Instant::now();
    for _ in 0..calls {
        plugin.count("a b")?;
    }
    println!("  a call takes about {:.1} µs", start.elapsed().as_secs_f64() * 1e6 / f64::from(calls));
    if crash {
        match plugin.crash() {
            Ok(()) => println!("  crash: no error?"),
            Err(e) => println!("  crash: an error, the host goes on: {e}"),
        }
        println!("  after the crash, count: {}", plugin.count("again")?.len());
    }
    Ok(())
}

fn run(path: &str) -> Result<(), Box<dyn Error>> {
    println!("in this process (fastest; a crash would take the host down):");
    exercise(&tomada_host::load::<dyn Words>(path)?, false)?;

    println!("in a child process (a crash or a hang costs only the plugin):");
    let isolated = Mode::Isolated(Isolation::new().deadline(Duration::from_secs(30)));
    exercise(&tomada_host::load_with::<dyn Words>(path, &isolated)?, true)?;

    remote(path)
}

/// A server of `path` on 127.0.0.1 (in a thread of this program, as `tomada serve`
/// would run it elsewhere), and the plugin loaded from it.
#[cfg(target_os = "linux")]
fn remote(path: &str) -> Result<(), Box<dyn Error>> {
    use tomada_host::remote::{Identity, Remote, Server};

    println!("on a server, over TLS with pinned keys (a crash costs only that client's plugin process):");
    // Each side's key; each side pins the other's (`tomada tls-key` writes one to a file).
    let (server_key, host_key) = (Identity::generate()?, Identity::generate()?);
    let loader = tomada_host::Loader::new();
    let server = Server::bind("127.0.0.1:0", &server_key, &[host_key.id()], &loader, &[path.into()], Isolation::new())?;
    let address = server.local_addr()?;
    std::thread::spawn(move || server.run());
    let remote = Remote::new(host_key)
        .endpoint(address.to_string())
        .trust_server(server_key.id())
        .deadline(Duration::from_secs(30));
    // A remote plugin is named as the server serves it: by its file name.
    let name = std::path::Path::new(path).file_name().ok_or("a plugin path with no file name")?;
    exercise(&tomada_host::load_with::<dyn Words>(name, &Mode::Remote(remote))?, true)
}

#[cfg(not(target_os = "linux"))]
fn remote(_: &str) -> Result<(), Box<dyn Error>> {
    println!("on a server: not on this platform yet (remote plugins are Linux-only)");
    Ok(())
}

fn main() -> ExitCode {
    // First thing: a plugin's child process is this executable, re-run.
    tomada_host::isolate::serve_if_runner();
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: three-modes-host PLUGIN (e.g. target/debug/libthree_modes_plugin.so)");
        return ExitCode::from(2);
    };
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("three-modes-host: {e}");
            ExitCode::FAILURE
        }
    }
}

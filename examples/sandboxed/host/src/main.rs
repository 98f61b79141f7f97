//! The host of the `sandboxed` example: `sandboxed-host PLUGIN` runs a [`Renderer`]
//! plugin in a child process under `Sandbox::strict()`, and keeps going when the
//! plugin panics, crashes, or tries to read what it was not granted.

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use sandboxed_api::Renderer;
use tomada_host::isolate::{Isolation, Mode, Sandbox};

fn run(path: &str) -> Result<(), Box<dyn Error>> {
    // The only file the plugin may read besides what loading needs: one in a
    // directory of our own.
    let granted = std::env::temp_dir().join(format!("sandboxed-example-{}", std::process::id()));
    std::fs::create_dir_all(&granted)?;
    std::fs::write(granted.join("note.txt"), "granted <3\n")?;

    let mode = Mode::Isolated(
        Isolation::new()
            .deadline(Duration::from_secs(10)) // per call; then the process is killed
            .sandbox(Sandbox::strict().allow_read(&granted)),
    );
    let renderer = tomada_host::load_with::<dyn Renderer>(path, &mode)?;
    let child = renderer.process_id().ok_or("no child process")?;
    println!("host: the plugin runs in another process: {}", child != std::process::id());

    for text in ["fish & chips", "", "still alive", "\u{0}", "back again"] {
        // Every call returns `Result<String, CallError>`: a fault is a value here.
        match renderer.render(text) {
            Ok(html) => println!("render {text:?}: {html}"),
            Err(e) => println!("render {text:?} failed: {e}"),
        }
    }

    // The sandbox: reads outside what was granted are refused by the kernel.
    let note = granted.join("note.txt");
    for file in [note.to_str().ok_or("a non-UTF-8 temporary directory")?, "/etc/passwd"] {
        let shown = if file == "/etc/passwd" { file } else { "note.txt" };
        match renderer.render_file(file)? {
            Ok(html) => println!("render_file {shown}: {html}"),
            Err(why) => println!("render_file {shown}: refused: {}", why.replace(file, shown)),
        }
    }
    println!("host: host can read /etc/passwd itself: {}", std::fs::read("/etc/passwd").is_ok());
    std::fs::remove_dir_all(&granted)?;
    println!("host: done");
    Ok(())
}

fn main() -> ExitCode {
    // First thing: the plugin's child process is this executable, re-run; it serves
    // the plugin here and never returns.
    tomada_host::isolate::serve_if_runner();
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: sandboxed-host PLUGIN (e.g. target/debug/libsandboxed_plugin.so)");
        return ExitCode::from(2);
    };
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `tomada-runner`: runs one isolated plugin for a host (see
//! `tomada_host::isolate::Runner::Path`). Started by a host, never by hand.

fn main() {
    tomada_host::isolate::serve_if_runner();
    eprintln!(
        "tomada-runner runs plugins for a host that isolates them (tomada_host::isolate); \
         it is not meant to be run directly"
    );
    std::process::exit(2);
}

//! Fixture: a greeter whose `greet` calls `abort()`. In-process it takes the host
//! down with it (no catching an abort); isolated, the host reports it and lives.

use pluginapi::{Greeter, tomada};

#[derive(Default)]
struct Doomed;

impl Greeter for Doomed {
    fn greet(&self, name: &str) -> String {
        eprintln!("about to abort while greeting {name}");
        std::process::abort()
    }
}

tomada::export!(Doomed as Greeter);

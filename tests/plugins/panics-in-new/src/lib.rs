//! Fixture: a greeter whose constructor panics while the host loads it.

use pluginapi::{Greeter, tomada};

struct NeverMade;

impl NeverMade {
    fn new() -> Self {
        panic!("configuração ausente")
    }
}

impl Greeter for NeverMade {
    fn greet(&self, name: &str) -> String {
        format!("Olá, {name}")
    }
}

tomada::export!(NeverMade as Greeter = NeverMade::new());

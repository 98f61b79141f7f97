//! Fixture: a greeter whose `greet` panics. The host must get an error, not die.

use pluginapi::{Greeter, tomada};

#[derive(Default)]
struct Grumpy;

impl Greeter for Grumpy {
    fn greet(&self, name: &str) -> String {
        panic!("não quero cumprimentar {name}")
    }
}

tomada::export!(Grumpy as Greeter);

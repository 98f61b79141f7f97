//! Fixture: a greeter with 24 MiB of read-only data in its file (not `.bss`), so
//! loading, hashing and verifying it cost what a large plugin's do.

use pluginapi::{Greeter, tomada};

/// Non-zero, so it is stored in the file.
static BIG: [u8; 24 << 20] = [7; 24 << 20];

#[derive(Default)]
struct Big;

impl Greeter for Big {
    fn greet(&self, name: &str) -> String {
        // Touch the data, so it is kept.
        let i = name.len() % BIG.len();
        format!("Olá, {name} ({})", std::hint::black_box(&BIG)[i])
    }
}

tomada::export!(Big as Greeter);

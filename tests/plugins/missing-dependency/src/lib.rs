//! Fixture: a greeter that needs `libtomada_gone.so`, which is nowhere the dynamic
//! loader looks at run time.

use pluginapi::{Greeter, tomada};

unsafe extern "C" {
    fn tomada_gone() -> i32;
}

#[derive(Default)]
struct Needy;

impl Greeter for Needy {
    fn greet(&self, name: &str) -> String {
        // SAFETY: a plain C function without arguments (never reached: the library
        // cannot be loaded).
        format!("Olá, {name} ({})", unsafe { tomada_gone() })
    }
}

tomada::export!(Needy as Greeter);

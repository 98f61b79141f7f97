//! The benchmark's plugin: each method does the least its shape allows.

use bench_callback_api::{Bench, Config, Cursor};

#[derive(Default)]
struct Plain;

struct Same;

impl Cursor for Same {
    fn next(&self) -> Option<String> {
        Some("value".to_owned())
    }
}

impl Bench for Plain {
    fn lookup(&self, key: &str, host: &dyn Config) -> Option<String> {
        host.config(key)
    }
    fn open(&self) -> Box<dyn Cursor> {
        Box::new(Same)
    }
    fn next(&self) -> Option<String> {
        Some("value".to_owned())
    }
}

tomada::export!(Plain as Bench);

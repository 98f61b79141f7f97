//! Fixture: a plugin built against `evolve::Api` 1.0.

use evolve_api_1_0::Api;

#[derive(Default)]
struct V10;

impl Api for V10 {
    fn greet(&self, name: &str) -> String {
        format!("oi {name}, de 1.0")
    }
    fn count(&self, data: &[u8]) -> u64 {
        data.len() as u64
    }
}

tomada::export!(V10 as Api);

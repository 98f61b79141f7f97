//! Fixture: a plugin built against `evolve::Api` 1.1.

use evolve_api_1_1::Api;

#[derive(Default)]
struct V11;

impl Api for V11 {
    fn greet(&self, name: &str) -> String {
        format!("oi {name}, de 1.1")
    }
    fn count(&self, data: &[u8]) -> u64 {
        data.len() as u64
    }
    fn farewell(&self, name: &str) -> String {
        format!("tchau {name}")
    }
}

tomada::export!(V11 as Api);

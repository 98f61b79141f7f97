//! Fixture: a plugin built against a wrongly evolved `evolve::Api` "1.1".

use evolve_api_1_1_broken::Api;

#[derive(Default)]
struct Broken;

impl Api for Broken {
    fn greet(&self, name: &str) -> String {
        format!("oi {name}")
    }
    fn count(&self, data: Vec<u8>) -> u64 {
        data.len() as u64
    }
    fn farewell(&self, name: &str) -> String {
        format!("tchau {name}")
    }
}

tomada::export!(Broken as Api);

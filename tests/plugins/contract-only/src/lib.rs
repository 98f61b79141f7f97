//! `solo_api::Words`, from a crate that depends on its contract crate only: `tomada`
//! is the contract's re-export, `#[tomada::implement]` included.

use solo_api::{Words, tomada};

/// Knows two words.
#[derive(Default)]
pub struct Pair;

#[tomada::implement]
impl Words for Pair {
    async fn word(&self, key: &str) -> Option<String> {
        match key {
            "pt" => Some("tomada".to_owned()),
            "en" => Some("socket".to_owned()),
            _ => None,
        }
    }

    async fn join(&self, words: &[String], sep: &str) -> String {
        words.join(sep)
    }

    fn count(&self) -> u64 {
        2
    }
}

tomada::export!(Pair as Words);

/// The attribute by its full path, in a module that imports nothing named `tomada`:
/// compiled (the expansion names no crate the plugin lacks), not exported.
mod full_path {
    use solo_api::Words;

    #[allow(dead_code, reason = "compiled, not exported")]
    pub struct Echo;

    #[solo_api::tomada::implement]
    impl Words for Echo {
        async fn word(&self, key: &str) -> Option<String> {
            Some(key.to_owned())
        }

        async fn join(&self, words: &[String], sep: &str) -> String {
            words.join(sep)
        }

        fn count(&self) -> u64 {
            0
        }
    }
}

// A contract with an `async fn`, implemented with `async fn` but without
// `#[tomada::implement]`: besides rustc's E0053 (which cannot say why), `export!`
// says to add the attribute.
#[tomada::contract(abi = 1)]
pub trait Cache {
    async fn fetch(&self, key: &str) -> Option<String>;
    fn size(&self) -> u64;
}

#[derive(Default)]
pub struct Memory;

impl Cache for Memory {
    async fn fetch(&self, key: &str) -> Option<String> {
        Some(key.to_owned())
    }
    fn size(&self) -> u64 {
        1
    }
}

tomada::export!(Memory as Cache);

fn main() {}

// The hand-written form of an async method (`-> BoxFuture`) matches the trait, but
// an impl of a contract with `async fn`s is still written under `#[tomada::implement]`
// (which leaves such methods alone): `export!` says to add it.
#[tomada::contract(abi = 1)]
pub trait Cache {
    async fn fetch(&self, key: &str) -> Option<String>;
}

#[derive(Default)]
pub struct Memory;

impl Cache for Memory {
    fn fetch<'a>(&'a self, key: &'a str) -> tomada::BoxFuture<'a, Option<String>> {
        Box::pin(async move { Some(key.to_owned()) })
    }
}

tomada::export!(Memory as Cache);

fn main() {}

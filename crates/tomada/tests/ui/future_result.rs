use std::future::Future;
use std::pin::Pin;

// A future written out in a contract trait is refused: `async fn` is the way.
#[tomada::contract(abi = 1)]
pub trait Boxed {
    fn fetch(&self, key: &str) -> Pin<Box<dyn Future<Output = String> + Send + '_>>;
}

#[tomada::contract(abi = 1)]
pub trait Opaque {
    fn fetch(&self) -> impl Future<Output = String> + Send;
}

fn main() {}

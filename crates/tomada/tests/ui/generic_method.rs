#[tomada::contract(abi = 1)]
pub trait Sink {
    fn put<T>(&self, value: T);
}

fn main() {}

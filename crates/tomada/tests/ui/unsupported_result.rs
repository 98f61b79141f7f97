#[tomada::contract(abi = 1)]
pub trait Numbers {
    fn all(&self) -> Vec<u32>;
}

fn main() {}

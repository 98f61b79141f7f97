#[tomada::contract(abi = 1)]
pub trait Counter {
    fn bump(&mut self) -> u64;
}

fn main() {}

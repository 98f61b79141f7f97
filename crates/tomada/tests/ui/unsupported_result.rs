#[tomada::contract(abi = 1)]
pub trait Clock {
    fn now(&self) -> std::time::Duration;
}

fn main() {}

#[tomada::contract(abi = 1)]
pub trait Plugin {
    fn create() -> Self
    where
        Self: Sized;
    fn run(&self) -> u32;
}

fn main() {}

#[tomada::contract(abi = 1)]
pub trait Namer {
    fn name(&self) -> &str;
}

fn main() {}

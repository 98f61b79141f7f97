#[tomada::contract(abi = 1)]
pub trait Keeper {
    fn keep(&self, name: &'static str);
}

fn main() {}

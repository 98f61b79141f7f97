#[derive(tomada::Abi)]
pub enum Never {}

fn main() {}

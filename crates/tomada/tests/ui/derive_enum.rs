#[derive(tomada::Abi)]
pub enum Color {
    Red,
    Green,
}

fn main() {}

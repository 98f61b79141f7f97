#[derive(tomada::Abi, Clone, Copy)]
pub enum Color {
    Red,
    Green,
}

#[derive(tomada::Abi)]
pub struct Order {
    pub id: u64,
    #[tomada(since = 1)]
    pub color: Color,
}

fn main() {}

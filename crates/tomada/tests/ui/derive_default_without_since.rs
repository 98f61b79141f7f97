#[derive(tomada::Abi)]
pub struct Order {
    pub id: u64,
    #[tomada(default = 7)]
    pub priority: u32,
}

fn main() {}

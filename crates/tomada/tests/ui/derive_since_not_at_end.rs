#[derive(tomada::Abi)]
pub struct Order {
    pub id: u64,
    #[tomada(since = 1)]
    pub note: String,
    pub items: Vec<String>,
}

fn main() {}

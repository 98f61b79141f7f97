#[tomada::contract(abi = 1)]
pub trait Shop {
    fn place(&self, id: u64) -> bool;
    #[tomada(since = 1)]
    async fn count(&self) -> u64 {
        0
    }
}

fn main() {}

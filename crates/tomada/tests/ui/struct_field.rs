use std::path::PathBuf;

#[derive(tomada::Abi)]
pub struct Config {
    pub name: String,
    pub path: PathBuf,
}

fn main() {}

//! The contract of the `sandboxed` example: a renderer the host does not trust.
//! Nothing here is about isolation: the host decides, when it loads a plugin,
//! whether it runs in-process or in a sandboxed child process.

pub use tomada;

/// Renders text for display.
#[tomada::contract(abi = 1)]
pub trait Renderer {
    /// `text` as HTML.
    fn render(&self, text: &str) -> String;
    /// The file at `path` as HTML, or why it cannot be read.
    fn render_file(&self, path: &str) -> Result<String, String>;
}

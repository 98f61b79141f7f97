//! The plugin of the `sandboxed` example: a renderer with two bugs planted on
//! purpose, the kinds a host cannot survive in-process — a panic is caught in any mode,
//! but an abort (or a segfault) takes the whole process with it.

use sandboxed_api::{Renderer, tomada};

#[derive(Default)]
struct Html;

impl Renderer for Html {
    fn render(&self, text: &str) -> String {
        match text {
            "" => panic!("cannot render empty text"),
            // Stands for any fatal fault: a segfault, a stack overflow, an `abort`.
            "\u{0}" => std::process::abort(),
            text => format!("<p>{}</p>", text.replace('&', "&amp;").replace('<', "&lt;")),
        }
    }

    fn render_file(&self, path: &str) -> Result<String, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        Ok(self.render(text.trim_end()))
    }
}

tomada::export!(Html as Renderer);

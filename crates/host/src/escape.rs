//! Printing text a plugin controls: its name, description, output lines, panic
//! and error messages. Written raw to a terminal or a log, such text could forge log
//! lines (`\r`, `\n`), move the cursor or rewrite the screen (`ESC [`), ring the bell,
//! set the window title, or reorder what the reader sees (Unicode bidirectional
//! overrides). [`escape_controls`] makes all of it visible instead.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character (C0, DEL, C1) and every Unicode
/// bidirectional control written as a visible escape (`\e`, `\r`, `\n`, `\t`,
/// `\u{202e}`, ...), and backslashes doubled, so escaped text cannot be confused
/// with an escape. Ordinary text, accents and emoji included, is unchanged (and not
/// copied).
///
/// ```
/// use tomada_host::escape::escape_controls;
/// assert_eq!(escape_controls("Olá, Mundo 👋"), "Olá, Mundo 👋");
/// assert_eq!(escape_controls("ok\r\x1b[2Kforged"), r"ok\r\e[2Kforged");
/// ```
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            '\x1b' => out.push_str(r"\e"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_visible_and_text_is_untouched() {
        assert!(matches!(escape_controls("Olá, Mundo 👋 — ok"), Cow::Borrowed(_)));
        assert_eq!(escape_controls("a\x07b\x7fc\u{9b}d"), r"a\u{7}b\u{7f}c\u{9b}d");
        assert_eq!(escape_controls("x\ny\tz"), r"x\ny\tz");
        assert_eq!(escape_controls("abc\u{202e}fed"), r"abc\u{202e}fed");
        assert_eq!(escape_controls(r"a\e"), r"a\\e");
    }
}

//! Checks on text that people and programs send: names of every kind (user, token, camera,
//! passkey, role…) and the quoting of user input in error messages.
//!
//! - [`check_name`]: 1 to `max_chars` characters after trimming, and no control characters
//!   (NUL, line breaks, escape sequences…): a name ends up in logs, audit rows, CSV exports and
//!   HTML, where such characters forge lines or hide text.
//! - [`quote`]: the form in which an error message repeats what a caller sent: at most
//!   [`QUOTE_MAX_CHARS`] characters (then `…`), control characters escaped, in double quotes — so
//!   a 1 MB name is never echoed whole.

use crate::{Error, Result};

/// How many characters of user input an error message repeats at most.
pub const QUOTE_MAX_CHARS: usize = 64;

/// `text` as an error message quotes it: in double quotes, control characters and quotes
/// escaped, cut after [`QUOTE_MAX_CHARS`] characters with `…`.
///
/// ```
/// assert_eq!(pv_core::input::quote("front door"), "\"front door\"");
/// assert_eq!(pv_core::input::quote("a\0b"), "\"a\\0b\"");
/// assert!(pv_core::input::quote(&"x".repeat(1_000_000)).chars().count() < 80);
/// ```
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(QUOTE_MAX_CHARS + 8);
    out.push('"');
    for (i, c) in text.chars().enumerate() {
        if i == QUOTE_MAX_CHARS {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out.push('"');
    out
}

/// Check a name of kind `what` (e.g. "a token name"): not empty after trimming, at most
/// `max_chars` characters, no control characters. The error says which rule failed and quotes
/// the name only with [`quote`].
///
/// ```
/// use pv_core::input::check_name;
/// assert!(check_name("a token name", "deploy bot", 64).is_ok());
/// let err = check_name("a token name", "bad\0name", 64).unwrap_err().to_string();
/// assert!(err.contains("control characters"), "{err}");
/// ```
pub fn check_name(what: &str, name: &str, max_chars: usize) -> Result<()> {
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        let shown = match c {
            '\0' => "NUL".to_string(),
            '\n' | '\r' => "a line break".to_string(),
            '\t' => "a tab".to_string(),
            c => format!("U+{:04X}", u32::from(c)),
        };
        return Err(Error::InvalidInput(format!(
            "{what} may not contain control characters; {} contains {shown}",
            quote(name)
        )));
    }
    if name.trim().is_empty() {
        return Err(Error::InvalidInput(format!("{what} may not be empty")));
    }
    let count = name.chars().count();
    if count > max_chars {
        return Err(Error::InvalidInput(format!(
            "{what} is at most {max_chars} characters; {} has {count}",
            quote(name)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_cuts_and_escapes() {
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(quote("line\nbreak"), "\"line\\nbreak\"");
        let long = quote(&"é".repeat(100));
        assert_eq!(long.chars().count(), QUOTE_MAX_CHARS + 3, "{long}");
        assert!(long.ends_with("…\""));
    }

    #[test]
    fn names_refuse_control_characters_and_length() {
        assert!(check_name("a name", "Front door", 64).is_ok());
        assert!(check_name("a name", "Café ☕", 64).is_ok());
        for bad in ["a\0b", "a\nb", "\u{1b}[31mred", "tab\there", "del\u{7f}"] {
            let e = check_name("a name", bad, 64).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
            assert!(e.to_string().contains("control characters"), "{e}");
        }
        assert!(check_name("a name", "a\0b", 64).unwrap_err().to_string().contains("NUL"));
        assert!(check_name("a name", "   ", 64).unwrap_err().to_string().contains("empty"));
        let huge = "x".repeat(1 << 20);
        let e = check_name("a name", &huge, 64).unwrap_err().to_string();
        assert!(e.len() < 200, "the message quotes a short prefix only: {} bytes", e.len());
        assert!(e.contains("1048576"), "{e}");
    }
}

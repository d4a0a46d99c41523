//! Text files as Windows writes them: a UTF-8 byte-order mark (Notepad), UTF-16 (what
//! Windows PowerShell 5.1 `>` and `Out-File` write), CRLF line ends; and text as it may
//! reach a console: a value from a file or the network never carries a control character
//! (an ESC sequence retitles or recolours the terminal, a bidi override reorders the line).

use std::borrow::Cow;

/// `bytes` as text, whatever a Windows tool wrote: a BOM is dropped, UTF-16 decoded.
/// CRLF stays (every parser of extpy's inputs reads it); the error says what is wrong.
pub(crate) fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, String> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, u16::from_be_bytes);
    }
    // UTF-16 without a BOM: ASCII text with every other byte zero.
    if bytes.len() >= 4
        && bytes.len().is_multiple_of(2)
        && bytes[1] == 0
        && bytes[3] == 0
        && bytes[0] != 0
    {
        return utf16(bytes, u16::from_le_bytes);
    }
    utf8(bytes)
}

fn utf8(bytes: &[u8]) -> Result<Cow<'_, str>, String> {
    std::str::from_utf8(bytes)
        .map(Cow::Borrowed)
        .map_err(|e| format!("it is not UTF-8 or UTF-16 text ({e})"))
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<Cow<'static, str>, String> {
    if !bytes.len().is_multiple_of(2) {
        return Err("it is UTF-16 text with an odd number of bytes (cut short?)".into());
    }
    let units = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map(Cow::Owned)
        .map_err(|e| format!("it is not valid UTF-16 text ({e})"))
}

/// True for a character a console must never get raw: C0 and C1 controls, DEL, the bidi
/// embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), the direction marks
/// (U+200E, U+200F, U+061C) and the Unicode line and paragraph separators.
fn hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}'
                | '\u{200f}'
                | '\u{061c}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn escaped(s: &str, keep: impl Fn(&str, usize, char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(hostile) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for (i, c) in s.char_indices() {
        if !hostile(c) || keep(s, i, c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{:04x}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// A value from a file or the network as it is shown: every control character, line break
/// and bidi control written as a visible escape (`\x1b`, `\u202e`), so one value stays one
/// piece of one line.
pub(crate) fn visible(s: &str) -> Cow<'_, str> {
    escaped(s, |_, _, _| false)
}

/// Text on its way to a console (stdout or stderr): line ends (LF, CRLF) and tabs stay,
/// every other control character and bidi control becomes a visible escape. The reporter
/// and the binary pass everything they print through here.
pub fn console(s: &str) -> Cow<'_, str> {
    escaped(s, |s, i, c| {
        c == '\n' || c == '\t' || (c == '\r' && s[i + 1..].starts_with('\n'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bidi_controls_become_visible() {
        let mut all = String::from("a");
        all.extend(
            (0u32..0x20)
                .chain([0x7f])
                .chain(0x80..0xa0)
                .filter_map(char::from_u32),
        );
        all.extend(
            (0x202a..=0x202e)
                .chain(0x2066..=0x2069)
                .chain([0x200e, 0x200f])
                .filter_map(char::from_u32),
        );
        all.push('z');
        let v = visible(&all);
        assert!(
            v.chars().all(|c| c.is_ascii() && !c.is_ascii_control()),
            "{v}"
        );
        assert!(
            v.starts_with("a\\x00\\x01") && v.ends_with("\\u200e\\u200fz"),
            "{v}"
        );
        assert!(v.contains("\\x1b") && v.contains("\\x7f\\x80") && v.contains("\\u202e"));
        let c = console(&all);
        assert!(
            c.contains("\\x08\t\n\\x0b") && c.contains("\\x0c\\x0d\\x0e"),
            "{c}"
        );
        assert_eq!(console("one\r\ntwo\n"), "one\r\ntwo\n");
        assert!(matches!(
            visible("Z\u{fc}rich"),
            Cow::Borrowed("Z\u{fc}rich")
        ));
    }

    fn utf16le(s: &str, bom: bool) -> Vec<u8> {
        let mut v = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
        v.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        v
    }

    #[test]
    fn what_windows_writes_reads_as_text() {
        let text = "line one\r\nZ\u{fc}rich\r\n";
        assert_eq!(decode(text.as_bytes()).unwrap(), text);
        let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        assert_eq!(decode(&bom).unwrap(), text);
        assert_eq!(decode(&utf16le(text, true)).unwrap(), text);
        assert_eq!(decode(&utf16le(text, false)).unwrap(), text);
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&be).unwrap(), text);
    }

    #[test]
    fn broken_text_is_named() {
        let mut odd = utf16le("abc", true);
        odd.push(b'x');
        assert!(decode(&odd).unwrap_err().contains("odd number"));
        assert!(decode(b"\xFF\xFE\x00\xD8").unwrap_err().contains("UTF-16"));
        assert!(decode(b"\xC3(").unwrap_err().contains("not UTF-8"));
    }
}

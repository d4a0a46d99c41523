//! Text files as Windows writes them: a UTF-8 byte-order mark (Notepad), UTF-16 (what
//! Windows PowerShell 5.1 `>` and `Out-File` write), CRLF line ends.

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

#[cfg(test)]
mod tests {
    use super::*;

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

//! Writing JSON strings by hand, for the two places that write JSON on every request and where
//! serde's byte-by-byte escaping showed in the instruction counts: the JSON log lines and the
//! postal-code answers.

/// Whether a string holds a byte that JSON must escape (a control character, `"` or `\\`).
/// Most values (paths, ids, event names, Japanese messages) hold none, so this check runs on every
/// string of every line: it looks at 8 bytes at a time ("SWAR": a byte below 0x20, or equal to
/// `"` or `\\`, shows up as a set high bit), several times cheaper than a loop over the bytes.
pub fn needs_escaping(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
        if control | has_zero_byte(x ^ (ONES * u64::from(b'"'))) | has_zero_byte(x ^ (ONES * u64::from(b'\\'))) != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Appends `value` as a JSON string literal, quoted and escaped exactly as `serde_json` does.
pub fn push_json_string(out: &mut String, value: &str) {
    use std::fmt::Write as _;
    out.push('"');
    let bytes = value.as_bytes();
    if !needs_escaping(bytes) {
        out.push_str(value);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&value[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&value[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fast_check_finds_every_byte_that_needs_escaping_wherever_it_is() {
        for length in 0..40 {
            let clean: Vec<u8> = "あa/".bytes().cycle().take(length).collect();
            assert!(!super::needs_escaping(&clean), "{clean:?}");
            for position in 0..length {
                for special in [b'"', b'\\', b'\n', 0x00, 0x1f] {
                    let mut bytes = clean.clone();
                    bytes[position] = special;
                    assert!(super::needs_escaping(&bytes), "{special:#x} at {position} of {length}");
                }
            }
        }
        assert!(!super::needs_escaping("/register/customer 申込 ~\u{7f} ".as_bytes()));
    }

    #[test]
    fn json_escaping_keeps_every_line_valid() {
        let mut out = String::new();
        let value = "a\"b\\c\nd\u{1}é\u{8}\u{c}\r\t\u{1f}";
        super::push_json_string(&mut out, value);
        assert_eq!(out, serde_json::to_string(value).expect("serialises"));
    }
}

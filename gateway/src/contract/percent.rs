//! The one percent-decoder of the gateway (path variables and query
//! parameters alike): strict, so a malformed escape is refused rather than
//! guessed at.

/// Percent-decodes `raw`; `None` on a malformed escape (`%` not followed by
/// two hex digits) or a non-UTF-8 result. With `keep_slash`, `%2F`/`%2f`
/// stay as written (a multi-segment path variable keeps its encoded slashes).
pub fn decode(raw: &str, keep_slash: bool) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let hi = bytes.get(i + 1).copied().and_then(hex_value)?;
        let lo = bytes.get(i + 2).copied().and_then(hex_value)?;
        let decoded = (hi << 4) | lo;
        if keep_slash && decoded == b'/' {
            out.extend_from_slice(bytes.get(i..i + 3)?);
        } else {
            out.push(decoded);
        }
        i += 3;
    }
    String::from_utf8(out).ok()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn only_two_hex_digits_make_an_escape() {
        assert_eq!(decode("a%20b%2Fc", false).as_deref(), Some("a b/c"));
        assert_eq!(decode("a%2Fb", true).as_deref(), Some("a%2Fb"));
        // `u8::from_str_radix` would take the sign: not an escape.
        for bad in ["%+1", "%-1", "%1", "%", "%zz", "%c3"] {
            assert_eq!(decode(bad, false), None, "{bad}");
        }
    }
}

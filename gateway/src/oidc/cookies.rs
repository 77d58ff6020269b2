//! The browser's two cookies: the SSO session (its value the auth
//! service's, opaque here) and the binding that ties a pending
//! authorization request to this browser. `__Host-` prefixed: Secure, no
//! Domain, Path=/, so no other host or path can set or shadow them.

use base64::Engine as _;
use http::{HeaderMap, HeaderValue, header};

pub const SESSION: &str = "__Host-suite-session";
pub const BINDING: &str = "__Host-suite-binding";

/// A cookie's value from the request's `Cookie` headers, if sent.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for `name=value`, living `max_age` seconds (None: the
/// browser session).
pub fn set(name: &str, value: &str, max_age: Option<i64>) -> Option<HeaderValue> {
    // Only cookie-octets (RFC 6265 §4.1.1): a value from elsewhere that
    // has others is not set at all rather than mangled.
    if !value
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'))
    {
        return None;
    }
    let age = max_age.map_or(String::new(), |a| format!("; Max-Age={}", a.max(0)));
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax{age}"
    ))
    .ok()
}

/// `Set-Cookie` that removes `name`.
pub fn clear(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
    ))
    .unwrap_or_else(|_| {
        HeaderValue::from_static("__Host-suite-session=; Path=/; Secure; Max-Age=0")
    })
}

/// A new binding value: 256 random bits, base64url.
pub fn new_binding() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_host_prefixed_http_only_secure_and_lax() {
        let c = set(SESSION, "abc", Some(60)).expect("set");
        assert_eq!(
            c,
            "__Host-suite-session=abc; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=60"
        );
        assert!(set(SESSION, "a;b", None).is_none());
        assert!(
            clear(BINDING)
                .to_str()
                .expect("ascii")
                .contains("Max-Age=0")
        );
    }

    #[test]
    fn a_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-suite-binding=xyz; b=2"),
        );
        assert_eq!(get(&h, BINDING).as_deref(), Some("xyz"));
        assert_eq!(get(&h, SESSION), None);
        assert_eq!(new_binding().map(|b| b.len()), Some(43));
    }
}

//! Redirect URIs: what may be registered (https, or http on a loopback
//! address for native apps, RFC 8252) and when a given URI names a
//! registered one (exactly, but for a loopback port).

use super::MAX_URI_CHARS;

/// Whether `host` is a loopback name: RFC 8252 lets native apps listen there
/// over plain http, on any port.
pub(super) fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Why `uri` cannot be registered as a redirect target, if it cannot.
pub fn redirect_uri_problem(uri: &str) -> Option<&'static str> {
    if uri.len() > MAX_URI_CHARS {
        return Some("must be at most 2000 characters");
    }
    let Ok(parsed) = url::Url::parse(uri) else {
        return Some("must be an absolute URI");
    };
    if parsed.fragment().is_some() || uri.contains('#') {
        return Some("must not have a fragment");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some("must not carry credentials");
    }
    match (parsed.scheme(), parsed.host()) {
        ("https", Some(_)) => None,
        ("http", Some(host)) if is_loopback(&host) => None,
        ("http", _) => Some("must be https (http only for 127.0.0.1, [::1] or localhost)"),
        _ => Some("must be an https URI"),
    }
}

/// Whether `given` names the registered redirect URI `registered`: exactly,
/// except that a loopback http URI's port may differ (RFC 8252 section 7.3).
pub fn redirect_matches(registered: &str, given: &str) -> bool {
    if registered == given {
        return true;
    }
    let (Ok(r), Ok(g)) = (url::Url::parse(registered), url::Url::parse(given)) else {
        return false;
    };
    r.scheme() == "http"
        && g.scheme() == "http"
        && r.host().is_some_and(|h| is_loopback(&h))
        && r.host_str() == g.host_str()
        && r.path() == g.path()
        && r.query() == g.query()
        && g.fragment().is_none()
        && g.username().is_empty()
        && g.password().is_none()
        // The text must agree but for the port: no normalisation may let
        // a differently written URI through.
        && strip_port(registered) == strip_port(given)
}

/// `uri`'s text without the `:port` of its authority.
pub(super) fn strip_port(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rsplit_once(':') {
        // `[::1]` has colons of its own: a port follows the `]`.
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.starts_with('[') || host.ends_with(']')) =>
        {
            host
        }
        _ => authority,
    };
    format!("{scheme}://{host}{tail}")
}

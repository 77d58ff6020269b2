//! The shapes of an authorization request's parameters: PKCE challenges
//! and `prompt`.

/// Whether `challenge` is a PKCE S256 challenge's shape (RFC 7636: 43 to 128
/// unreserved characters).
pub fn pkce_shaped(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// What `prompt` asks.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// The words of `prompt` (OpenID Connect Core 3.1.2.1), or `None` if one
/// is unknown or `none` comes with another.
pub(super) fn parse_prompt(prompt: &str) -> Option<Prompt> {
    let mut p = Prompt::default();
    for word in prompt.split(' ').filter(|w| !w.is_empty()) {
        match word {
            "none" => p.none = true,
            "login" => p.login = true,
            "consent" => p.consent = true,
            // We have one account per browser: choosing is signing in.
            "select_account" => p.login = true,
            _ => return None,
        }
    }
    (!(p.none && (p.login || p.consent))).then_some(p)
}

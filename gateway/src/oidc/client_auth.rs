//! How a client authenticates at the token, introspection and revocation
//! endpoints: HTTP Basic (`client_secret_basic`, whose id and secret are
//! form-urlencoded before base64, RFC 6749 §2.3.1), the form
//! (`client_secret_post`), or its id alone (`none`, a public client). More
//! than one method at once is refused (RFC 6749 §2.3).

use super::form::Params;
use base64::Engine as _;
use http::{HeaderMap, header};
use suite_proto::auth::ClientAuthentication;

/// Why the client's credentials could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuthError {
    /// Malformed or ambiguous: `invalid_request`.
    Invalid(&'static str),
    /// No client named at all: `invalid_client`.
    Missing,
    /// A Basic header that does not decode: `invalid_client`, with the
    /// Basic challenge.
    BadBasic,
}

/// The client's credentials, and whether they came in a Basic header
/// (whose failure is answered with a Basic challenge).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub client: ClientAuthentication,
    pub basic: bool,
}

/// The credentials of a request: its `Authorization` header and form.
pub fn read(headers: &HeaderMap, form: &Params) -> Result<Credentials, ClientAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value.to_str().map_err(|_| ClientAuthError::BadBasic)?;
            match value.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                    Some(decode_basic(rest.trim()).ok_or(ClientAuthError::BadBasic)?)
                }
                // A bearer token or any other scheme authenticates no client here.
                _ => return Err(ClientAuthError::Invalid("unsupported Authorization scheme")),
            }
        }
    };
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    if let Some((id, secret)) = basic {
        if form_secret.is_some() {
            return Err(ClientAuthError::Invalid(
                "the client authenticated with both Basic and client_secret",
            ));
        }
        if form_id.is_some_and(|f| f != id) {
            return Err(ClientAuthError::Invalid(
                "client_id differs from the Basic credentials",
            ));
        }
        return Ok(Credentials {
            client: ClientAuthentication {
                client_id: id,
                client_secret: secret,
                method: "client_secret_basic".into(),
            },
            basic: true,
        });
    }
    let Some(id) = form_id else {
        return Err(ClientAuthError::Missing);
    };
    Ok(Credentials {
        client: ClientAuthentication {
            client_id: id.to_owned(),
            client_secret: form_secret.unwrap_or_default().to_owned(),
            method: if form_secret.is_some() {
                "client_secret_post"
            } else {
                "none"
            }
            .into(),
        },
        basic: false,
    })
}

/// `base64(urlencode(id) ":" urlencode(secret))` → (id, secret).
pub fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| -> String {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (decode(id), decode(secret));
    (!id.is_empty()).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn basic(raw: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode(raw);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {v}")).expect("header"),
        );
        h
    }

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        // A secret with ':' '+' and '%' as a conforming client encodes it.
        let c = read(&basic("my%3Aclient:s%2Bc+r%25t%3A"), &Params::default()).expect("read");
        assert_eq!(c.client.client_id, "my:client");
        assert_eq!(c.client.client_secret, "s+c r%t:");
        assert_eq!(c.client.method, "client_secret_basic");
        assert!(c.basic);
    }

    #[test]
    fn two_methods_at_once_are_an_invalid_request() {
        let form = Params::parse(b"client_id=a&client_secret=s").expect("form");
        assert_eq!(
            read(&basic("a:s"), &form).map(|_| ()),
            Err(ClientAuthError::Invalid(
                "the client authenticated with both Basic and client_secret"
            ))
        );
    }

    #[test]
    fn the_form_gives_post_or_none_and_nothing_is_missing() {
        let post = read(
            &HeaderMap::new(),
            &Params::parse(b"client_id=a&client_secret=s").expect("form"),
        )
        .expect("read");
        assert_eq!(post.client.method, "client_secret_post");
        let none = read(
            &HeaderMap::new(),
            &Params::parse(b"client_id=a").expect("form"),
        )
        .expect("read");
        assert_eq!(none.client.method, "none");
        assert_eq!(
            read(&HeaderMap::new(), &Params::default()).map(|_| ()),
            Err(ClientAuthError::Missing)
        );
        let mut garbage = HeaderMap::new();
        garbage.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(
            read(&garbage, &Params::default()).map(|_| ()),
            Err(ClientAuthError::BadBasic)
        );
    }
}

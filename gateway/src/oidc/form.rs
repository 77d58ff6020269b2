//! `application/x-www-form-urlencoded` bodies and queries as OAuth reads
//! them: a parameter sent twice is an error (RFC 6749 §3.1, §3.2), not a
//! choice between two values.

use http::{HeaderMap, header};
use std::collections::HashMap;

/// The parameters of a form or a query, each at most once.
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

/// Why a form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the body must be application/x-www-form-urlencoded")]
    ContentType,
    #[error("the parameter {0} is repeated")]
    Repeated(String),
}

impl Params {
    /// Parses `bytes` (a body or a query string).
    pub fn parse(bytes: &[u8]) -> Result<Self, FormError> {
        let mut map = HashMap::new();
        for (name, value) in form_urlencoded::parse(bytes) {
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(FormError::Repeated(name.into_owned()));
            }
        }
        Ok(Self(map))
    }

    /// A form body, which must say it is one.
    pub fn from_body(headers: &HeaderMap, body: &[u8]) -> Result<Self, FormError> {
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return Err(FormError::ContentType);
        }
        Self::parse(body)
    }

    /// A parameter; an empty one is the same as none (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A parameter, or "".
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_owned()
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_repeated_parameter_is_refused_and_an_empty_one_is_absent() {
        assert_eq!(
            Params::parse(b"a=1&a=2").map(|_| ()),
            Err(FormError::Repeated("a".into()))
        );
        let p = Params::parse(b"a=&b=x+y%21").expect("parsed");
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("x y!"));
    }

    #[test]
    fn only_a_form_content_type_is_a_form() {
        let mut headers = HeaderMap::new();
        assert!(Params::from_body(&headers, b"a=1").is_err());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
        );
        assert!(Params::from_body(&headers, b"a=1").is_ok());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert_eq!(
            Params::from_body(&headers, b"{}").map(|_| ()),
            Err(FormError::ContentType)
        );
    }
}

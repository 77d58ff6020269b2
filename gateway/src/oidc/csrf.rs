//! The CSRF guard of the forms that no authorization request guards (the
//! device's user-code form, the forgotten password's form): a token derived
//! from the browser's binding cookie, which another site can neither read
//! nor set (`__Host-`, `HttpOnly`, `SameSite=Lax`), so a form posted from
//! elsewhere cannot carry it. Nothing is stored for a page that may never
//! be posted.

use super::pages::binding;
use base64::Engine as _;
use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// One guarded form: its own label, so that no other form's token is this
/// one's, and the security event a forged post of it is logged as.
pub struct BoundForm {
    pub label: &'static str,
    pub security_event: &'static str,
}

/// A page of a guarded form: the browser's binding, the token to put in
/// the form, and the `Set-Cookie` of the browser's new binding if it had none.
pub struct Bound {
    pub binding: String,
    pub csrf_token: String,
    pub new_binding: Option<HeaderValue>,
}

impl BoundForm {
    /// The form's token for `binding`.
    pub fn token(&self, binding: &str) -> String {
        let label = self.label;
        let digest = Sha256::digest(format!("suite {label} form:{binding}").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    }

    /// The form's token for this browser (a new binding if it has none).
    pub fn bind(&self, headers: &HeaderMap) -> Bound {
        let (binding, new_binding) = binding(headers);
        Bound {
            csrf_token: self.token(&binding),
            binding,
            new_binding,
        }
    }

    /// The browser's token when the posted `csrf_token` is it; otherwise
    /// (logged as a forgery) `Err` with the token to ask again with. A new
    /// binding means the form was not this browser's (or its cookie
    /// expired): the form is asked for again, with a token that will match.
    pub fn check(&self, headers: &HeaderMap, posted: &str) -> Result<Bound, Bound> {
        let bound = self.bind(headers);
        if bound.new_binding.is_none()
            && bool::from(bound.csrf_token.as_bytes().ct_eq(posted.as_bytes()))
        {
            return Ok(bound);
        }
        tracing::warn!(
            security_event = self.security_event,
            "the {} form's CSRF token did not match its browser",
            self.label
        );
        Err(bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(label: &'static str) -> BoundForm {
        BoundForm {
            label,
            security_event: "test",
        }
    }

    #[test]
    fn the_token_is_the_bindings_and_reveals_nothing_of_it() {
        for label in ["device", "forgot-password"] {
            let a = form(label).token("binding-a");
            assert_eq!(a, form(label).token("binding-a"));
            assert_ne!(a, form(label).token("binding-b"));
            assert_eq!(a.len(), 43);
            assert!(!a.contains("binding"));
        }
    }

    #[test]
    fn each_forms_token_is_its_own() {
        assert_ne!(
            form("device").token("binding"),
            form("forgot-password").token("binding")
        );
    }
}

//! Who may call each method with an OAuth access token: the contract's
//! `suite.api.v1.access` options, read at build time into one table that the
//! gateway and the services consult, so a scope is declared once.

/// What an OAuth access token needs to call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodAccess {
    /// A public method: no token needed, so no scope either.
    Open,
    /// A token of a user who granted the client this scope.
    Scope(&'static str),
    /// First-party and service tokens only (internal methods, and any
    /// method that names no scope): every OAuth token is refused.
    FirstParty,
}

include!(concat!(env!("OUT_DIR"), "/access.rs"));

/// The access rule of a method, by its gRPC path
/// (`/suite.user.v1.UserService/GetUser`); a path outside the contract is
/// [`MethodAccess::FirstParty`], the strictest.
pub fn method_access(path: &str) -> MethodAccess {
    METHODS
        .binary_search_by(|(p, _)| (*p).cmp(path))
        .ok()
        .and_then(|i| METHODS.get(i))
        .map_or(MethodAccess::FirstParty, |(_, access)| *access)
}

/// The gRPC path of a method of a service (`/{service}/{method}`), as
/// [`method_access`] takes it.
pub fn method_path(service: &str, method: &str) -> String {
    format!("/{service}/{method}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_follows_the_contract() {
        assert_eq!(
            method_access("/suite.user.v1.UserService/GetUser"),
            MethodAccess::Scope("user:read")
        );
        assert_eq!(
            method_access("/suite.user.v1.UserService/UpdateUser"),
            MethodAccess::Scope("user:write")
        );
        assert_eq!(
            method_access("/suite.user.v1.UserService/ListUsers"),
            MethodAccess::Scope("admin")
        );
        assert_eq!(
            method_access("/suite.auth.v1.AuthService/RevokeSession"),
            MethodAccess::Scope("user:write")
        );
        assert_eq!(
            method_access("/suite.auth.v1.AuthService/Login"),
            MethodAccess::Open
        );
        assert_eq!(
            method_access("/suite.user.v1.UserService/VerifyCredentials"),
            MethodAccess::FirstParty
        );
        assert_eq!(method_access("/nope/Nope"), MethodAccess::FirstParty);
        assert!(METHODS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn every_method_routed_over_rest_names_its_scope_or_is_public() {
        assert!(
            UNSCOPED_ROUTES.is_empty(),
            "give these methods an `option (suite.api.v1.access) = {{scope: \"...\"}}` \
             (or make them public): {UNSCOPED_ROUTES:?}"
        );
    }
}

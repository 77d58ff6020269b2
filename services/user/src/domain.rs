//! Parsed user input: values that can only exist when valid. Values read
//! back from the store come in through `from_stored`, unchecked: only parsed
//! values are ever written, and re-checking would make users unreadable the
//! day the rules tighten. `from_stored` is never for outside input.

use crate::error::{Error, FieldViolation};
use std::collections::BTreeSet;
use suite_proto::{
    Password,
    user::{CreateUserRequest, UpdateUserRequest, User},
};
use suite_tokens::Caller;
use uuid::Uuid;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// The user a call names: `me` (the caller) or an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRef {
    Me,
    Id(Uuid),
}

impl UserRef {
    /// A user reference from a request's `field`.
    pub fn parse(raw: &str, field: &str) -> Result<Self, Error> {
        if raw == "me" {
            return Ok(Self::Me);
        }
        if raw.is_empty() {
            return Err(Error::invalid(field, "is required"));
        }
        Uuid::parse_str(raw)
            .map(Self::Id)
            .map_err(|_| Error::invalid(field, "must be a user id (a UUID) or `me`"))
    }

    /// The id this names for `caller` (`me` needs a user's token; the
    /// error names `field`).
    pub fn resolve(self, caller: &Caller, field: &str) -> Result<Uuid, Error> {
        match self {
            Self::Id(id) => Ok(id),
            Self::Me => caller
                .user_id()
                .ok_or_else(|| Error::invalid(field, "`me` needs a user's token")),
        }
    }
}

/// 3 to 32 characters of `a-z 0-9 _ . -`, stored lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// A value read back from the store, unchecked (see the module's doc).
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    /// Exactly what the published pattern (`^[A-Za-z0-9_.-]{3,32}$`)
    /// accepts, lower-cased: no trimming, and no Unicode case folding (the
    /// Kelvin sign would fold to `k`), so the document and the server agree
    /// on every input.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let n = raw.chars().count();
        if !(3..=32).contains(&n) {
            return Err("must be 3 to 32 characters long".into());
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(
                "may contain only letters a-z (in any case), digits, '_', '.' and '-'".into(),
            );
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address in lower case, checked for a plausible shape
/// (delivery is the only real proof, and is not this service's job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// A value read back from the store, unchecked (see the module's doc).
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim().to_lowercase();
        let bad = || "must be a valid email address".to_string();
        if s.is_empty() || s.len() > 254 {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok {
            Ok(Self(s))
        } else {
            Err(bad())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Optional free text, trimmed, at most 64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// A value read back from the store, unchecked (see the module's doc).
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.chars().count() > 64 {
            return Err("must be at most 64 characters long".into());
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        if s.chars().any(is_invisible) {
            return Err(
                "must not contain invisible or direction-changing characters (Unicode format characters)"
                    .into(),
            );
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters that change how a name reads without showing (bidirectional
/// overrides, zero-width joiners, fillers), so one user could pose as
/// another in a listing: Unicode format characters (Cf), line and paragraph
/// separators, and the blank fillers that are letters by category.
fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || matches!(
        c,
        '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{3164}' | '\u{FFA0}'
    )
}

/// A new password of acceptable length. Strength is judged separately (it
/// needs the username and email, and CPU time on the hashing threads).
#[derive(Debug)]
pub struct NewPassword(Password);

impl NewPassword {
    /// `given` (`None`: the field was empty), if its length is acceptable.
    pub fn parse(given: Option<Password>) -> Result<Self, String> {
        // Counting stops early, so a megabyte-long value costs nothing more.
        let n = given.as_ref().map_or(0, |p| {
            p.expose().chars().take(MAX_PASSWORD_CHARS + 1).count()
        });
        if n < MIN_PASSWORD_CHARS {
            return Err(format!(
                "must be at least {MIN_PASSWORD_CHARS} characters long"
            ));
        }
        if n > MAX_PASSWORD_CHARS {
            return Err(format!(
                "must be at most {MAX_PASSWORD_CHARS} characters long"
            ));
        }
        given.map(Self).ok_or_else(|| "is required".to_owned())
    }

    /// The password itself, for hashing.
    pub fn into_password(self) -> Password {
        self.0
    }
}

/// Roles a user may hold. (`service` belongs to service tokens, never to users.)
pub const ASSIGNABLE_ROLES: &[&str] = &["user", "admin"];

/// A de-duplicated, sorted, non-empty set of assignable roles; empty input means `user`.
pub fn parse_roles(raw: &[String]) -> Result<Vec<String>, String> {
    let mut set = BTreeSet::new();
    for r in raw {
        let r = r.trim().to_lowercase();
        if !ASSIGNABLE_ROLES.contains(&r.as_str()) {
            return Err(format!(
                "unknown role {r:?}; roles are: {}",
                ASSIGNABLE_ROLES.join(", ")
            ));
        }
        set.insert(r);
    }
    if set.is_empty() {
        set.insert("user".to_owned());
    }
    Ok(set.into_iter().collect())
}

/// Collects field violations so that one reply names every bad field.
#[derive(Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// Keeps the value, or records the violation under `field`.
    pub fn check<T>(&mut self, field: &str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(d) => {
                self.0.push(FieldViolation::new(field, d));
                None
            }
        }
    }

    pub fn add(&mut self, field: &str, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Records the violation of `r`, if it is one.
    pub fn note<T>(&mut self, field: &str, r: &Result<T, String>) {
        if let Err(d) = r {
            self.add(field, d.as_str());
        }
    }

    pub fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }

    /// The violations as an error (for a caller that knows there are some).
    pub fn into_error(self) -> Error {
        Error::InvalidArgument(self.0)
    }
}

/// A registration, parsed: every field valid, or every bad field named.
#[derive(Debug)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub password: NewPassword,
    pub display_name: DisplayName,
    pub roles: Vec<String>,
}

impl NewUser {
    pub fn parse(req: CreateUserRequest) -> Result<Self, Error> {
        match (
            Username::parse(&req.username),
            Email::parse(&req.email),
            NewPassword::parse(Password::parse(req.password).ok()),
            DisplayName::parse(&req.display_name),
            parse_roles(&req.roles),
        ) {
            (Ok(username), Ok(email), Ok(password), Ok(display_name), Ok(roles)) => Ok(Self {
                username,
                email,
                password,
                display_name,
                roles,
            }),
            (username, email, password, display_name, roles) => {
                let mut v = Violations::default();
                v.note("username", &username);
                v.note("email", &email);
                v.note("password", &password);
                v.note("display_name", &display_name);
                v.note("roles", &roles);
                Err(v.into_error())
            }
        }
    }
}

/// An update's new values, parsed: `Some` for each field the update names.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub display_name: Option<DisplayName>,
    pub roles: Option<Vec<String>>,
}

impl UserChanges {
    /// The values of `user` at `paths` (see `MUTABLE_FIELDS`), every bad one
    /// named as `user.<field>`.
    pub fn parse(user: &User, paths: &[&str]) -> Result<Self, Error> {
        let named = |field: &str| paths.contains(&field);
        let mut v = Violations::default();
        let changes = Self {
            username: named("username")
                .then(|| v.check("user.username", Username::parse(&user.username)))
                .flatten(),
            email: named("email")
                .then(|| v.check("user.email", Email::parse(&user.email)))
                .flatten(),
            display_name: named("display_name")
                .then(|| v.check("user.display_name", DisplayName::parse(&user.display_name)))
                .flatten(),
            roles: named("roles")
                .then(|| v.check("user.roles", parse_roles(&user.roles)))
                .flatten(),
        };
        v.into_result()?;
        Ok(changes)
    }
}

/// Fields an UpdateUser mask may name.
const MUTABLE_FIELDS: &[&str] = &["username", "email", "display_name", "roles"];
/// Fields that exist but can never be changed.
const IMMUTABLE_FIELDS: &[&str] = &["id", "create_time", "update_time", "etag"];

/// An UpdateUser call, parsed: whom, what changes, and the etag it was read at.
#[derive(Debug)]
pub struct UserUpdate {
    pub target: UserRef,
    pub changes: UserChanges,
    /// Empty: whatever the current version.
    pub etag: String,
}

impl UserUpdate {
    pub fn parse(req: UpdateUserRequest) -> Result<Self, Error> {
        let user = req
            .user
            .ok_or_else(|| Error::invalid("user", "is required"))?;
        let target = UserRef::parse(&user.id, "user.id")?;
        let paths = update_paths(&user, req.update_mask.map(|m| m.paths))?;
        let changes = UserChanges::parse(&user, &paths)?;
        Ok(Self {
            target,
            changes,
            etag: user.etag,
        })
    }
}

/// The fields an update touches: the mask's, or every field given a value.
fn update_paths(user: &User, mask: Option<Vec<String>>) -> Result<Vec<&'static str>, Error> {
    let mask = mask.unwrap_or_default();
    let mut v = Violations::default();
    let mut paths = Vec::new();
    if mask.is_empty() {
        if !user.username.is_empty() {
            paths.push("username");
        }
        if !user.email.is_empty() {
            paths.push("email");
        }
        if !user.display_name.is_empty() {
            paths.push("display_name");
        }
        if !user.roles.is_empty() {
            paths.push("roles");
        }
    }
    for p in &mask {
        if p == "*" {
            paths.extend_from_slice(MUTABLE_FIELDS);
        } else if let Some(f) = MUTABLE_FIELDS.iter().find(|f| **f == p.as_str()) {
            paths.push(f);
        } else if IMMUTABLE_FIELDS.contains(&p.as_str()) {
            v.add("update_mask", format!("{p} cannot be changed"));
        } else {
            v.add("update_mask", format!("{p} is not a field of User"));
        }
    }
    v.into_result()?;
    paths.sort_unstable();
    paths.dedup();
    if paths.is_empty() {
        return Err(Error::invalid("update_mask", "names no field to update"));
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_refuse_invisible_and_direction_changing_characters() {
        for bad in [
            "admin\u{202E}\u{200B}",
            "a\u{200D}b",
            "\u{2066}x\u{2069}",
            "soft\u{00AD}hyphen",
            "\u{3164}",
            "line\u{2028}break",
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["Ada Lovelace", "Zoë", "李小龍", "José 🚀"] {
            assert!(DisplayName::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn usernames_are_lowercased_and_restricted() {
        assert_eq!(
            Username::parse("Alice.B-1").map(|u| u.0),
            Ok("alice.b-1".into())
        );
        // What the published pattern refuses: spaces around, and letters
        // that only fold to ASCII (the Kelvin sign folds to `k`).
        assert!(Username::parse(" alice").is_err());
        assert!(Username::parse("\u{212A}ate").is_err());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("alïce").is_err());
    }

    #[test]
    fn emails_are_lowercased_and_shaped() {
        assert_eq!(
            Email::parse("Bob@Example.COM").map(|e| e.0),
            Ok("bob@example.com".into())
        );
        for bad in [
            "",
            "bob",
            "bob@",
            "@x.org",
            "bob@localhost",
            "b b@x.org",
            "bob@x..org",
            "bob@-x.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_bounded_in_characters_not_bytes() {
        let new = |raw: &str| NewPassword::parse(Password::parse(raw.to_owned()).ok());
        assert!(new("1234567").is_err());
        assert!(new("éééééééé").is_ok());
        assert!(new(&"x".repeat(128)).is_ok());
        assert!(new(&"x".repeat(129)).is_err());
        assert!(new(&"x".repeat(1 << 20)).is_err());
        assert!(new("").is_err());
    }

    #[test]
    fn update_paths_refuse_immutable_and_unknown_fields() {
        let user = User::default();
        assert!(update_paths(&user, Some(vec!["id".into()])).is_err());
        assert!(update_paths(&user, Some(vec!["password_hash".into()])).is_err());
        assert!(update_paths(&user, None).is_err());
        let named = User {
            display_name: "Al".into(),
            ..User::default()
        };
        assert_eq!(update_paths(&named, None).ok(), Some(vec!["display_name"]));
        assert_eq!(
            update_paths(&user, Some(vec!["email".into(), "email".into()])).ok(),
            Some(vec!["email"])
        );
    }

    #[test]
    fn roles_default_to_user_and_refuse_unknown_ones() {
        assert_eq!(parse_roles(&[]), Ok(vec!["user".to_owned()]));
        assert_eq!(
            parse_roles(&["admin".into(), "user".into(), "admin".into()]),
            Ok(vec!["admin".to_owned(), "user".to_owned()])
        );
        assert!(parse_roles(&["service".into()]).is_err());
    }
}

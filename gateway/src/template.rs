//! `google.api.http` path templates (the `HttpRule` syntax of googleapis'
//! `google/api/http.proto`): parsing, matching request paths, binding variables.

use std::cmp::Reverse;
use std::fmt;

/// How much a `**` counts in [`PathTemplate::specificity`]: it stands for any
/// number of segments, so it must lose against any realistic run of `*`s.
const DEEP_WILDCARD_WEIGHT: usize = 1024;

/// A template that does not follow the grammar; the message names the problem
/// and the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Compared byte for byte with the raw (still percent-encoded) path segment.
    Literal(String),
    /// `*`: exactly one non-empty segment.
    Wildcard,
    /// `**`: zero or more segments; only ever the last segment.
    DeepWildcard,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Variable {
    field_path: String,
    /// The template segments it covers, `start..end`.
    start: usize,
    end: usize,
    /// Covers several segments (or `**`): per http.proto its value keeps `%2F`
    /// encoded, so every '/' in the value is a real segment separator.
    multi_segment: bool,
}

/// A parsed path template such as `/v1/{name=shelves/*/books/*}:publish`.
///
/// Matching rules:
/// - Empty path segments (`//`, a trailing `/`) never match anything.
/// - Literals are compared with the raw path segment; bound values are
///   percent-decoded, and invalid encoding or non-UTF-8 results mean no match.
/// - Colons follow grpc-gateway: only a template with a verb splits the last
///   path segment, at its last ':', and requires the suffix to equal the verb.
///   A template without a verb matches the segment literally, so `/users/{id}`
///   binds `id = "abc:changePassword"` for `/users/abc:changePassword`; the
///   verb counts in [`specificity`](Self::specificity), so the `:changePassword`
///   template is tried first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    raw: String,
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
}

impl PathTemplate {
    /// Parses `template`, rejecting anything outside the http.proto grammar.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        Self::parse_inner(template).map_err(|problem| {
            TemplateError(format!("invalid path template {template:?}: {problem}"))
        })
    }

    fn parse_inner(template: &str) -> Result<Self, String> {
        let rest = template.strip_prefix('/').ok_or("it must start with '/'")?;
        check_braces(rest)?;
        let (body, verb) = split_verb(rest);
        if let Some(verb) = verb {
            check_verb(verb)?;
        }
        let mut segments = Vec::new();
        let mut variables: Vec<Variable> = Vec::new();
        for piece in split_top_level(body) {
            let Some(inner) = piece.strip_prefix('{') else {
                segments.push(parse_plain_segment(piece)?);
                continue;
            };
            let inner = inner
                .strip_suffix('}')
                .ok_or("a variable must be a whole segment")?;
            let (field_path, pattern) = match inner.split_once('=') {
                Some((field, pattern)) => (field, Some(pattern)),
                None => (inner, None),
            };
            check_field_path(field_path)?;
            if variables.iter().any(|v| v.field_path == field_path) {
                return Err(format!("variable {field_path:?} appears twice"));
            }
            let start = segments.len();
            match pattern {
                None => segments.push(Segment::Wildcard),
                Some(pattern) => {
                    for s in pattern.split('/') {
                        segments.push(parse_plain_segment(s)?);
                    }
                }
            }
            let end = segments.len();
            let multi_segment = end - start > 1 || segments.last() == Some(&Segment::DeepWildcard);
            variables.push(Variable {
                field_path: field_path.to_owned(),
                start,
                end,
                multi_segment,
            });
        }
        if let Some(pos) = segments.iter().position(|s| *s == Segment::DeepWildcard)
            && pos + 1 != segments.len()
        {
            return Err("'**' may only be the last segment".into());
        }
        Ok(Self {
            raw: template.to_owned(),
            segments,
            variables,
            verb: verb.map(str::to_owned),
        })
    }

    /// Matches a request path (already without query string); returns the bound
    /// variables as (field path, percent-decoded value) in template order, or None.
    ///
    /// Single-segment variables decode everything (`%2F` becomes '/'); variables
    /// over several segments or `**` keep `%2F`/`%2f` as written, as http.proto
    /// specifies. A `**` matching zero segments contributes nothing to its value
    /// (so `{name=**}` may bind "").
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let mut parts: Vec<&str> = rest.split('/').collect();
        if let Some(verb) = &self.verb {
            let last = parts.last_mut()?;
            let (head, tail) = last.rsplit_once(':')?;
            if tail != verb {
                return None;
            }
            *last = head;
        }
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let deep = self.segments.last() == Some(&Segment::DeepWildcard);
        if deep {
            if parts.len() + 1 < self.segments.len() {
                return None;
            }
        } else if parts.len() != self.segments.len() {
            return None;
        }
        for (segment, part) in self.segments.iter().zip(&parts) {
            if let Segment::Literal(literal) = segment
                && literal != part
            {
                return None;
            }
        }
        let mut bound = Vec::with_capacity(self.variables.len());
        for var in &self.variables {
            let end = if deep && var.end == self.segments.len() {
                parts.len()
            } else {
                var.end
            };
            let raw = parts.get(var.start..end)?.join("/");
            bound.push((
                var.field_path.clone(),
                crate::percent::decode(&raw, var.multi_segment)?,
            ));
        }
        Some(bound)
    }

    /// The template as written (for error messages / OpenAPI), e.g. "/api/v1/users/{user.id}".
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The template as an OpenAPI path: variables without their patterns
    /// (`/v1/{name=shelves/*}` → `/v1/{name}`).
    pub fn openapi_path(&self) -> String {
        let mut out = String::with_capacity(self.raw.len());
        let (mut in_variable, mut in_pattern) = (false, false);
        for c in self.raw.chars() {
            match c {
                '{' => in_variable = true,
                '=' if in_variable => in_pattern = true,
                '}' => (in_variable, in_pattern) = (false, false),
                _ => {}
            }
            if !in_pattern {
                out.push(c);
            }
        }
        out
    }

    /// The field paths of its variables, in template order, e.g. ["user.id"].
    pub fn variables(&self) -> Vec<String> {
        self.variables
            .iter()
            .map(|v| v.field_path.clone())
            .collect()
    }

    /// The custom verb, if any (e.g. Some("changePassword")).
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }

    /// Ordering key for when several templates match: greater is more specific,
    /// so sort by `Reverse(specificity())` and take the first match.
    ///
    /// First the number of literal segments (the verb counts as one, so
    /// `/users/{id}:cancel` beats `/users/{id}` and `/users/me` beats
    /// `/users/{id}`), then fewer wildcards (`*` weighs 1, `**` weighs
    /// [`DEEP_WILDCARD_WEIGHT`] because it may stand for any number of segments).
    pub fn specificity(&self) -> (usize, Reverse<usize>) {
        let mut literals = usize::from(self.verb.is_some());
        let mut wildcards = 0;
        for segment in &self.segments {
            match segment {
                Segment::Literal(_) => literals += 1,
                Segment::Wildcard => wildcards += 1,
                Segment::DeepWildcard => wildcards += DEEP_WILDCARD_WEIGHT,
            }
        }
        (literals, Reverse(wildcards))
    }
}

/// Braces must pair up, one level deep (a variable may not contain another).
fn check_braces(s: &str) -> Result<(), String> {
    let mut open = false;
    for c in s.chars() {
        match c {
            '{' if open => return Err("nested variables are not allowed".into()),
            '{' => open = true,
            '}' if !open => return Err("unbalanced braces: '}' without '{'".into()),
            '}' => open = false,
            _ => {}
        }
    }
    if open {
        return Err("unbalanced braces: '{' without '}'".into());
    }
    Ok(())
}

/// Splits off the verb: the text after the last ':' outside braces, provided
/// no '/' outside braces follows it (a ':' earlier is part of a literal).
/// Expects balanced braces.
fn split_verb(s: &str) -> (&str, Option<&str>) {
    let mut in_braces = false;
    let mut colon = None;
    for (i, c) in s.char_indices() {
        match c {
            '{' => in_braces = true,
            '}' => in_braces = false,
            '/' if !in_braces => colon = None,
            ':' if !in_braces => colon = Some(i),
            _ => {}
        }
    }
    match colon.and_then(|i| Some((s.get(..i)?, s.get(i + 1..)?))) {
        Some((body, verb)) => (body, Some(verb)),
        None => (s, None),
    }
}

fn check_verb(verb: &str) -> Result<(), String> {
    if verb.is_empty() {
        return Err("the verb after ':' is empty".into());
    }
    if verb
        .chars()
        .any(|c| "{}*=".contains(c) || forbidden_in_path(c))
    {
        return Err(format!("invalid verb {verb:?}"));
    }
    Ok(())
}

/// Splits on '/' outside braces. Expects balanced braces.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut in_braces = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => in_braces = true,
            '}' => in_braces = false,
            '/' if !in_braces => {
                pieces.push(s.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(s.get(start..).unwrap_or_default());
    pieces
}

/// `*`, `**` or a literal (anything that could appear raw in a request path).
fn parse_plain_segment(s: &str) -> Result<Segment, String> {
    match s {
        "" => Err("empty segment".into()),
        "*" => Ok(Segment::Wildcard),
        "**" => Ok(Segment::DeepWildcard),
        _ if s.contains('*') => Err(format!("'*' and '**' must be whole segments, not {s:?}")),
        _ if s.contains(['{', '}']) => Err("a variable must be a whole segment".into()),
        _ if s.contains('=') => Err(format!(
            "'=' is only allowed after a variable's field path, not in {s:?}"
        )),
        _ if s.chars().any(forbidden_in_path) => Err(format!("invalid character in literal {s:?}")),
        _ => Ok(Segment::Literal(s.to_owned())),
    }
}

/// Characters a raw request path cannot contain, so a literal with them could never match.
fn forbidden_in_path(c: char) -> bool {
    c == '?' || c == '#' || c.is_whitespace() || c.is_control()
}

/// `IDENT { "." IDENT }` with `IDENT = [A-Za-z_][A-Za-z0-9_]*`.
fn check_field_path(field_path: &str) -> Result<(), String> {
    if field_path.is_empty() {
        return Err("empty field path in variable".into());
    }
    let ident = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !field_path.split('.').all(ident) {
        return Err(format!(
            "invalid field path {field_path:?}: each part must match [A-Za-z_][A-Za-z0-9_]*"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(s: &str) -> PathTemplate {
        match PathTemplate::parse(s) {
            Ok(t) => t,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn bound(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn parse_error(s: &str) -> String {
        match PathTemplate::parse(s) {
            Ok(t) => panic!("{s:?} should not parse, got {t:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn assert_parse_error(s: &str, problem: &str) {
        let message = parse_error(s);
        assert!(
            message.contains(problem),
            "{s:?}: {message:?} should mention {problem:?}"
        );
        assert!(
            message.contains(&format!("{s:?}")),
            "{message:?} should name the template"
        );
    }

    #[test]
    fn openapi_paths_drop_variable_patterns() {
        let t = PathTemplate::parse("/v1/{name=shelves/*/books/**}:get").expect("parses");
        assert_eq!(t.openapi_path(), "/v1/{name}:get");
        let t = PathTemplate::parse("/api/v1/users/{user.id}").expect("parses");
        assert_eq!(t.openapi_path(), "/api/v1/users/{user.id}");
    }

    #[test]
    fn a_literal_only_template_matches_exactly_its_path() {
        let t = template("/api/v1/users");
        assert_eq!(t.matches("/api/v1/users"), bound(&[]));
        assert_eq!(t.matches("/api/v1/user"), None);
        assert_eq!(t.matches("/api/v2/users"), None);
        assert_eq!(t.matches("/api/v1/users/x"), None);
        assert_eq!(t.matches("/api/v1"), None);
        assert_eq!(t.matches("/api/v1/users/"), None);
        assert_eq!(t.matches("//api/v1/users"), None);
        assert_eq!(t.matches("/api//v1/users"), None);
        assert_eq!(t.matches("api/v1/users"), None);
        assert_eq!(t.matches(""), None);
        assert_eq!(t.matches("/"), None);
        assert!(t.variables().is_empty());
        assert_eq!(t.verb(), None);
        assert_eq!(t.as_str(), "/api/v1/users");
    }

    #[test]
    fn a_simple_variable_binds_exactly_one_non_empty_segment() {
        let t = template("/api/v1/users/{id}");
        assert_eq!(t.matches("/api/v1/users/abc"), bound(&[("id", "abc")]));
        assert_eq!(t.matches("/api/v1/users"), None);
        assert_eq!(t.matches("/api/v1/users/"), None);
        assert_eq!(t.matches("/api/v1/users/abc/"), None);
        assert_eq!(t.matches("/api/v1/users/abc/def"), None);
        assert_eq!(t.matches("/api/v1/people/abc"), None);
        assert_eq!(t.variables(), vec!["id".to_string()]);
    }

    #[test]
    fn a_simple_variable_is_the_same_as_a_single_star_pattern() {
        let short = template("/api/v1/users/{id}");
        let long = template("/api/v1/users/{id=*}");
        for path in [
            "/api/v1/users/abc",
            "/api/v1/users",
            "/api/v1/users/a/b",
            "/x",
        ] {
            assert_eq!(short.matches(path), long.matches(path), "{path}");
        }
        assert_eq!(short.specificity(), long.specificity());
    }

    #[test]
    fn a_dotted_field_path_is_bound_under_its_full_name() {
        let t = template("/api/v1/users/{user.id}");
        assert_eq!(t.matches("/api/v1/users/42"), bound(&[("user.id", "42")]));
        assert_eq!(t.matches("/api/v1/users/42/x"), None);
        assert_eq!(t.variables(), vec!["user.id".to_string()]);
        assert_eq!(t.as_str(), "/api/v1/users/{user.id}");
    }

    #[test]
    fn single_segment_values_are_fully_percent_decoded() {
        let t = template("/api/v1/users/{id}");
        assert_eq!(t.matches("/api/v1/users/a%20b"), bound(&[("id", "a b")]));
        assert_eq!(t.matches("/api/v1/users/a%2Fb"), bound(&[("id", "a/b")]));
        assert_eq!(t.matches("/api/v1/users/a%2fb"), bound(&[("id", "a/b")]));
        assert_eq!(
            t.matches("/api/v1/users/%C3%A9t%C3%A9"),
            bound(&[("id", "été")])
        );
        assert_eq!(t.matches("/api/v1/users/a+b"), bound(&[("id", "a+b")]));
        assert_eq!(t.matches("/api/v1/users/%3A"), bound(&[("id", ":")]));
    }

    #[test]
    fn invalid_percent_encoding_does_not_match() {
        let t = template("/api/v1/users/{id}");
        for path in [
            "/api/v1/users/%zz",
            "/api/v1/users/%",
            "/api/v1/users/a%2",
            "/api/v1/users/%G0",
            "/api/v1/users/%FF",
            "/api/v1/users/%C3",
        ] {
            assert_eq!(t.matches(path), None, "{path}");
        }
    }

    #[test]
    fn a_verb_template_requires_the_verb_on_the_last_segment() {
        let t = template("/api/v1/users/{id}:changePassword");
        assert_eq!(t.verb(), Some("changePassword"));
        assert_eq!(t.variables(), vec!["id".to_string()]);
        assert_eq!(
            t.matches("/api/v1/users/abc:changePassword"),
            bound(&[("id", "abc")])
        );
        assert_eq!(t.matches("/api/v1/users/abc"), None);
        assert_eq!(t.matches("/api/v1/users/abc:resetPassword"), None);
        assert_eq!(t.matches("/api/v1/users/abc:changepassword"), None);
        assert_eq!(t.matches("/api/v1/users/:changePassword"), None);
        assert_eq!(t.matches("/api/v1/users/abc:changePassword/"), None);
        assert_eq!(t.matches("/api/v1/users/abc/:changePassword"), None);
        assert_eq!(t.matches("/api/v1/users/abc%3AchangePassword"), None);
    }

    #[test]
    fn a_verb_template_splits_only_at_the_last_colon() {
        let t = template("/api/v1/users/{id}:changePassword");
        assert_eq!(
            t.matches("/api/v1/users/a:b:changePassword"),
            bound(&[("id", "a:b")])
        );
        assert_eq!(t.matches("/api/v1/users/a:changePassword:x"), None);
    }

    #[test]
    fn a_template_without_a_verb_keeps_a_colon_in_the_value() {
        let t = template("/api/v1/users/{id}");
        assert_eq!(
            t.matches("/api/v1/users/abc:changePassword"),
            bound(&[("id", "abc:changePassword")])
        );
        let literal = template("/api/v1/users");
        assert_eq!(literal.matches("/api/v1/users:list"), None);
    }

    #[test]
    fn a_colon_inside_an_earlier_literal_is_not_a_verb() {
        let t = template("/v1/a:b/{id}");
        assert_eq!(t.verb(), None);
        assert_eq!(t.matches("/v1/a:b/x"), bound(&[("id", "x")]));
    }

    #[test]
    fn a_verb_may_follow_a_literal_segment() {
        let t = template("/v1/users:search");
        assert_eq!(t.verb(), Some("search"));
        assert_eq!(t.matches("/v1/users:search"), bound(&[]));
        assert_eq!(t.matches("/v1/users"), None);
    }

    #[test]
    fn a_dotted_literal_matches_only_itself() {
        let t = template("/.well-known/jwks.json");
        assert_eq!(t.matches("/.well-known/jwks.json"), bound(&[]));
        assert_eq!(t.matches("/.well-known/jwks_json"), None);
        assert_eq!(t.matches("/.well-known/jwks.json/"), None);
        assert_eq!(t.matches("/well-known/jwks.json"), None);
        assert_eq!(t.matches("/.well-known"), None);
        assert_eq!(t.verb(), None);
    }

    #[test]
    fn literals_are_compared_with_the_raw_segment() {
        let t = template("/.well-known/jwks.json");
        assert_eq!(t.matches("/.well-known/jwks%2Ejson"), None);
    }

    #[test]
    fn a_variable_after_several_literals_binds_the_last_segment() {
        let t = template("/api/v1/auth/sessions/{id}");
        assert_eq!(
            t.matches("/api/v1/auth/sessions/s-1"),
            bound(&[("id", "s-1")])
        );
        assert_eq!(t.matches("/api/v1/auth/sessions"), None);
        assert_eq!(t.matches("/api/v1/auth/session/s-1"), None);
        assert_eq!(t.matches("/api/v1/auth/sessions/s-1/extra"), None);
        assert_eq!(t.matches("/api/v1/auth/sessions//"), None);
    }

    #[test]
    fn a_multi_segment_variable_binds_its_segments_joined_with_slashes() {
        let t = template("/v1/{name=shelves/*}/books");
        assert_eq!(
            t.matches("/v1/shelves/s1/books"),
            bound(&[("name", "shelves/s1")])
        );
        assert_eq!(t.matches("/v1/shelves/s1"), None);
        assert_eq!(t.matches("/v1/shelves/s1/books/"), None);
        assert_eq!(t.matches("/v1/shelves//books"), None);
        assert_eq!(t.matches("/v1/racks/s1/books"), None);
        assert_eq!(t.matches("/v1/shelves/s1/x/books"), None);
        assert_eq!(t.variables(), vec!["name".to_string()]);
    }

    #[test]
    fn a_multi_segment_variable_keeps_encoded_slashes() {
        let t = template("/v1/{name=shelves/*}/books");
        assert_eq!(
            t.matches("/v1/shelves/a%2Fb/books"),
            bound(&[("name", "shelves/a%2Fb")])
        );
        assert_eq!(
            t.matches("/v1/shelves/a%2fb/books"),
            bound(&[("name", "shelves/a%2fb")])
        );
        assert_eq!(
            t.matches("/v1/shelves/a%20b/books"),
            bound(&[("name", "shelves/a b")])
        );
        assert_eq!(t.matches("/v1/shelves/a%zz/books"), None);
    }

    #[test]
    fn a_double_star_matches_zero_or_more_trailing_segments() {
        let t = template("/v1/{name=shelves/*/books/**}");
        assert_eq!(
            t.matches("/v1/shelves/s1/books"),
            bound(&[("name", "shelves/s1/books")])
        );
        assert_eq!(
            t.matches("/v1/shelves/s1/books/b1"),
            bound(&[("name", "shelves/s1/books/b1")])
        );
        assert_eq!(
            t.matches("/v1/shelves/s1/books/b1/pages/7"),
            bound(&[("name", "shelves/s1/books/b1/pages/7")])
        );
        assert_eq!(
            t.matches("/v1/shelves/s1/books/a%2Fb%20c"),
            bound(&[("name", "shelves/s1/books/a%2Fb c")])
        );
        assert_eq!(t.matches("/v1/shelves/s1"), None);
        assert_eq!(t.matches("/v1/shelves/s1/books/"), None);
        assert_eq!(t.matches("/v1/shelves/s1/books/b1//x"), None);
        assert_eq!(t.matches("/v1/shelves/s1/magazines/b1"), None);
    }

    #[test]
    fn a_bare_double_star_can_bind_nothing() {
        let t = template("/v1/{name=**}:get");
        assert_eq!(t.matches("/v1:get"), bound(&[("name", "")]));
        assert_eq!(t.matches("/v1/a/b:get"), bound(&[("name", "a/b")]));
        assert_eq!(t.matches("/v1/a/b"), None);
    }

    #[test]
    fn unbound_wildcards_match_without_binding() {
        let t = template("/v1/*/items/**");
        assert_eq!(t.matches("/v1/x/items"), bound(&[]));
        assert_eq!(t.matches("/v1/x/items/%zz/y"), bound(&[]));
        assert_eq!(t.matches("/v1//items"), None);
    }

    #[test]
    fn several_variables_are_returned_in_template_order() {
        let t = template("/v1/{b}/x/{a.c=*/y}");
        assert_eq!(t.variables(), vec!["b".to_string(), "a.c".to_string()]);
        assert_eq!(
            t.matches("/v1/1/x/2/y"),
            bound(&[("b", "1"), ("a.c", "2/y")])
        );
    }

    #[test]
    fn a_template_must_start_with_a_slash() {
        assert_parse_error("api/v1/users", "must start with '/'");
        assert_parse_error("", "must start with '/'");
    }

    #[test]
    fn unbalanced_braces_are_rejected() {
        assert_parse_error("/v1/{id", "unbalanced braces");
        assert_parse_error("/v1/id}", "unbalanced braces");
        assert_parse_error("/v1/{id}}", "unbalanced braces");
        assert_parse_error("/v1/}{id", "unbalanced braces");
    }

    #[test]
    fn an_empty_field_path_is_rejected() {
        assert_parse_error("/v1/{}", "empty field path");
        assert_parse_error("/v1/{=*}", "empty field path");
    }

    #[test]
    fn a_bad_identifier_is_rejected() {
        for s in [
            "/v1/{1id}",
            "/v1/{user.}",
            "/v1/{.id}",
            "/v1/{user..id}",
            "/v1/{user-id}",
            "/v1/{ id }",
            "/v1/{é}",
        ] {
            assert_parse_error(s, "invalid field path");
        }
    }

    #[test]
    fn nested_variables_are_rejected() {
        assert_parse_error("/v1/{name=shelves/{id}}", "nested variables");
        assert_parse_error("/v1/{a{b}}", "nested variables");
    }

    #[test]
    fn a_double_star_anywhere_but_last_is_rejected() {
        assert_parse_error("/v1/**/books", "'**' may only be the last segment");
        assert_parse_error("/v1/{name=**}/books", "'**' may only be the last segment");
        assert_parse_error("/v1/{name=a/**/b}", "'**' may only be the last segment");
        assert_parse_error("/**/**", "'**' may only be the last segment");
    }

    #[test]
    fn empty_segments_are_rejected() {
        for s in [
            "/",
            "/v1//users",
            "/v1/users/",
            "/v1/{name=}",
            "/v1/{name=a//b}",
            "/v1/{name=a/}",
            "/:verb",
        ] {
            assert_parse_error(s, "empty segment");
        }
    }

    #[test]
    fn an_empty_verb_is_rejected() {
        assert_parse_error("/v1/users:", "verb after ':' is empty");
        assert_parse_error("/v1/{id}:", "verb after ':' is empty");
    }

    #[test]
    fn a_malformed_verb_is_rejected() {
        assert_parse_error("/v1/users:{id}", "invalid verb");
        assert_parse_error("/v1/users:*", "invalid verb");
    }

    #[test]
    fn partial_wildcards_and_variables_are_rejected() {
        assert_parse_error("/v1/a*", "must be whole segments");
        assert_parse_error("/v1/***", "must be whole segments");
        assert_parse_error("/v1/a{id}", "a variable must be a whole segment");
        assert_parse_error("/v1/{id}a", "a variable must be a whole segment");
    }

    #[test]
    fn unmatchable_literals_are_rejected() {
        assert_parse_error("/v1/a b", "invalid character");
        assert_parse_error("/v1/a?b=c", "'='");
        assert_parse_error("/v1/a?b", "invalid character");
        assert_parse_error("/v1/a#b", "invalid character");
    }

    #[test]
    fn a_repeated_variable_is_rejected() {
        assert_parse_error("/v1/{id}/x/{id}", "appears twice");
    }

    #[test]
    fn parse_errors_implement_std_error() {
        let err: Box<dyn std::error::Error> = match PathTemplate::parse("nope") {
            Ok(_) => panic!("should fail"),
            Err(e) => Box::new(e),
        };
        assert!(
            err.to_string()
                .starts_with("invalid path template \"nope\"")
        );
    }

    #[test]
    fn more_literals_and_fewer_wildcards_sort_first() {
        let mut templates: Vec<PathTemplate> = [
            "/api/v1/users/{id}",
            "/api/v1/{rest=**}",
            "/api/v1/users/me",
            "/api/v1/users/{id}:changePassword",
            "/api/v1/*/*",
            "/api/v1/users",
            "/api/v1/{a=*/*/*}",
        ]
        .iter()
        .map(|s| template(s))
        .collect();
        templates.sort_by_key(|t| Reverse(t.specificity()));
        let order: Vec<&str> = templates.iter().map(PathTemplate::as_str).collect();
        assert_eq!(
            order,
            [
                "/api/v1/users/me",
                "/api/v1/users/{id}:changePassword",
                "/api/v1/users",
                "/api/v1/users/{id}",
                "/api/v1/*/*",
                "/api/v1/{a=*/*/*}",
                "/api/v1/{rest=**}",
            ]
        );
    }

    #[test]
    fn a_verb_template_is_tried_before_the_plain_variable_it_overlaps() {
        let plain = template("/api/v1/users/{id}");
        let verb = template("/api/v1/users/{id}:changePassword");
        assert!(verb.specificity() > plain.specificity());
        let path = "/api/v1/users/abc:changePassword";
        assert!(plain.matches(path).is_some() && verb.matches(path).is_some());
    }

    #[test]
    fn a_star_is_more_specific_than_a_double_star_over_the_same_literals() {
        let star = template("/v1/{name=shelves/*/books/*}");
        let deep = template("/v1/{name=shelves/*/books/**}");
        assert!(star.specificity() > deep.specificity());
    }

    /// xorshift64: deterministic garbage without crates.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn string(&mut self, alphabet: &[char], max_len: usize) -> String {
            let len = self.below(max_len + 1);
            (0..len)
                .map(|_| {
                    alphabet
                        .get(self.below(alphabet.len()))
                        .copied()
                        .unwrap_or('x')
                })
                .collect()
        }
    }

    #[test]
    fn garbage_never_panics_in_parse_or_matches() {
        let alphabet: Vec<char> = "/{}*=:.%_aZ09-~?# é😀\u{0}2fF".chars().collect();
        let fixed: Vec<PathTemplate> = [
            "/api/v1/users",
            "/api/v1/users/{id}",
            "/api/v1/users/{user.id}",
            "/api/v1/users/{id}:changePassword",
            "/.well-known/jwks.json",
            "/api/v1/auth/sessions/{id}",
            "/v1/{name=shelves/*}/books",
            "/v1/{name=shelves/*/books/**}",
            "/{a}/{b=**}:x",
        ]
        .iter()
        .map(|s| template(s))
        .collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut parsed = 0;
        for _ in 0..5000 {
            let s = rng.string(&alphabet, 24);
            let path = rng.string(&alphabet, 24);
            let bytes: Vec<u8> = (0..rng.below(24)).map(|_| rng.next() as u8).collect();
            let lossy = String::from_utf8_lossy(&bytes).into_owned();
            for candidate in [&s, &format!("/{s}"), &lossy, &format!("/{lossy}")] {
                if let Ok(t) = PathTemplate::parse(candidate) {
                    parsed += 1;
                    let _ = (t.as_str(), t.variables(), t.verb(), t.specificity());
                    let _ = t.matches(&path);
                    let _ = t.matches(&format!("/{path}"));
                    let _ = t.matches(candidate);
                }
                for t in &fixed {
                    let _ = t.matches(candidate);
                }
            }
        }
        assert!(
            parsed > 0,
            "the generator should produce some valid templates"
        );
    }
}

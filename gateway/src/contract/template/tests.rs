//! The path templates: the grammar's refusals, matching, binding and the
//! order of specificity.

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

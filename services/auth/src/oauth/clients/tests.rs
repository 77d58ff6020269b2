//! The client rules, without a database.

use super::*;

#[test]
fn redirect_uris_must_be_https_or_loopback_http_without_fragment() {
    for good in [
        "https://app.example.com/cb",
        "http://127.0.0.1/cb",
        "http://[::1]:8080/cb",
        "http://localhost:3000/callback?x=1",
        "com.example.app:/oauth2redirect",
    ] {
        let problem = redirect_uri_problem(good);
        if good.starts_with("com.") {
            assert!(
                problem.is_some(),
                "{good}: custom schemes are not offered yet"
            );
        } else {
            assert_eq!(problem, None, "{good}");
        }
    }
    for bad in [
        "http://app.example.com/cb",
        "https://app.example.com/cb#frag",
        "/relative",
        "https://user:pw@app.example.com/cb",
        "javascript:alert(1)",
    ] {
        assert!(redirect_uri_problem(bad).is_some(), "{bad}");
    }
}

#[test]
fn redirect_uris_match_exactly_but_for_a_loopback_port() {
    let r = "https://app.example.com/cb";
    assert!(redirect_matches(r, r));
    for off in [
        "https://app.example.com/cb/",
        "https://app.example.com/cB",
        "https://app.example.com:443/cb",
        "https://app.example.com/cb?x=1",
        "https://app.example.com/c",
        "https://app.example.co/cb",
    ] {
        assert!(!redirect_matches(r, off), "{off}");
    }
    let native = "http://127.0.0.1/callback";
    assert!(redirect_matches(native, "http://127.0.0.1:51234/callback"));
    assert!(redirect_matches(
        "http://[::1]:80/cb",
        "http://[::1]:9999/cb"
    ));
    assert!(!redirect_matches(
        native,
        "http://127.0.0.1:51234/callbacks"
    ));
    assert!(!redirect_matches(native, "http://localhost:51234/callback"));
    assert!(!redirect_matches(native, "http://127.0.0.1:5/callback#x"));
    assert!(!redirect_matches(
        "http://evil.example/cb",
        "http://evil.example:81/cb"
    ));
}

//! A browser for the OpenID Connect tests (`oidc.rs`): HTTP/1.1 requests
//! to the gateway, the cookies it sets kept and sent back (each checked for
//! its attributes), and the pages' hidden fields and redirects read.

use crate::helpers::Suite;
use bytes::Bytes;
use http_body_util::Full;
use std::collections::HashMap;

/// An answer: status, headers, body text.
pub struct Page {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// A hidden field's value on a page.
    pub fn field(&self, name: &str) -> String {
        let re = regex::Regex::new(&format!(r#"name="{name}" value="([^"]*)""#)).expect("regex");
        re.captures(&self.body)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_owned())
            .unwrap_or_else(|| panic!("no field {name} on {}", self.body))
    }

    /// The query parameters of the `Location`.
    pub fn location_query(&self) -> HashMap<String, String> {
        let location = self.header("location");
        let query = location.split_once('?').map_or("", |(_, q)| q);
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }
}

/// A browser: its cookies, kept as the gateway sets them.
#[derive(Default)]
pub struct Browser {
    pub cookies: HashMap<String, String>,
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, page: &Page) {
        for value in page.headers.get_all("set-cookie") {
            let value = value.to_str().expect("ascii");
            assert!(
                value.contains("; Secure")
                    && value.contains("; HttpOnly")
                    && value.contains("SameSite=Lax"),
                "{value}"
            );
            let (pair, _) = value.split_once(';').unwrap_or((value, ""));
            let (name, v) = pair.split_once('=').expect("name=value");
            if v.is_empty() || value.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), v.to_owned());
            }
        }
    }

    pub async fn get(&mut self, s: &Suite, path: &str) -> Page {
        let cookie = self.cookie_header();
        let page = http(s, "GET", path, &[("cookie", &cookie)], None).await;
        self.keep(&page);
        page
    }

    pub async fn post(&mut self, s: &Suite, path: &str, form: &[(&str, &str)]) -> Page {
        let cookie = self.cookie_header();
        let page = http(s, "POST", path, &[("cookie", &cookie)], Some(encode(form))).await;
        self.keep(&page);
        page
    }
}

pub fn encode(form: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish()
}

/// One request on a fresh connection; a body is a form.
pub async fn http(
    s: &Suite,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    form: Option<String>,
) -> Page {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1");
    for (name, value) in headers {
        if !value.is_empty() {
            req = req.header(*name, *value);
        }
    }
    let body = match form {
        Some(f) => {
            req = req.header("content-type", "application/x-www-form-urlencoded");
            Full::new(Bytes::from(f))
        }
        None => Full::new(Bytes::new()),
    };
    let answer = suite_testkit::http::send(s.gateway, req.body(body).expect("request")).await;
    Page {
        status: answer.status,
        body: answer.text(),
        headers: answer.headers,
    }
}

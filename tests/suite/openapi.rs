//! The served OpenAPI document against the routes actually served: the same
//! set both ways, with the right parameters, security and success statuses.
//! (CI also fuzzes the running suite from the document with schemathesis:
//! `scripts/openapi_fuzz.sh`.)

use crate::helpers::spawn_suite;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use suite_gateway::contract::routes::{RequestBody, RouteTable};
use suite_testkit::Backend;

const SAMPLE_ID: &str = "01a216e4-4d21-773d-b270-03fa587d21ab";

fn route_table() -> RouteTable {
    let pool = prost_reflect::DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptors");
    RouteTable::from_pool(&pool, &suite_gateway::ROUTED_SERVICES).expect("routes")
}

/// A documented path with each `{parameter}` filled in.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        out.push_str(SAMPLE_ID);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_exactly_the_served_routes() {
    let Some(s) = spawn_suite(Backend::Sqlite).await else {
        return;
    };
    let reply = s.get("/api/openapi.json", None).await.expect("document");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let doc = reply.json;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );

    let table = route_table();
    let mut described = BTreeSet::new();
    let paths = doc["paths"].as_object().expect("paths");
    for (path, operations) in paths {
        for (method, op) in operations.as_object().expect("operations") {
            let verb = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .expect("an HTTP method");
            let url = concrete(path);
            let Ok((route, vars)) = table.find(&verb, &url) else {
                // Only the gateway's own routes are outside the table.
                assert!(
                    ["/api/health", "/api/openapi.json"].contains(&path.as_str()),
                    "{method} {path} is documented but not served"
                );
                let served = s.get(path, None).await.expect("reply");
                assert!(
                    [200, 503].contains(&served.status),
                    "{path}: {}",
                    served.status
                );
                continue;
            };
            described.insert((route.http_method.to_string(), route.template.as_str()));
            let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
            let in_path = parameters.iter().filter(|p| p["in"] == "path").count();
            assert_eq!(in_path, vars.len(), "{method} {path}: path parameters");
            for p in &parameters {
                let name = p["name"].as_str().expect("name");
                if p["in"] == "path" {
                    assert!(path.contains(&format!("{{{name}}}")), "{path}: {name}");
                }
            }
            let public = op["security"] == serde_json::json!([]);
            assert_eq!(public, route.public, "{method} {path}: security");
            let success = route.success.as_u16().to_string();
            assert!(
                op["responses"].get(&success).is_some(),
                "{method} {path}: no {success} response"
            );
            if !route.public {
                assert!(op["responses"].get("401").is_some(), "{method} {path}: 401");
            }
            let has_body = !matches!(route.body, RequestBody::None);
            assert_eq!(
                op["requestBody"].is_object(),
                has_body,
                "{method} {path}: request body"
            );
            // And it is really there: anything but "no such route"/405.
            let body = has_body.then(|| serde_json::json!({}));
            let served = s
                .request(method.to_ascii_uppercase().as_str(), &url, None, body)
                .await
                .expect("reply");
            assert_ne!(served.status, 405, "{method} {url}");
            assert_ne!(
                served.json["detail"],
                Value::from("no such route"),
                "{method} {url}"
            );
        }
    }
    let served: BTreeSet<_> = table
        .routes()
        .iter()
        .map(|r| (r.http_method.to_string(), r.template.as_str()))
        .collect();
    assert_eq!(described, served, "documented vs served routes");
    assert!(served.len() >= 12, "{served:?}");
    s.stop().await;
}

/// The document as the gateway renders it, from the same contract.
fn document() -> Value {
    let pool = prost_reflect::DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptors");
    suite_gateway::docs::openapi::document(&route_table(), &pool)
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

/// The document's numbers are the services' own: a change on one side
/// only fails here.
#[test]
fn the_published_rules_are_the_ones_the_services_enforce() {
    use suite_user::domain::{self, DisplayName, NewPassword, Username};
    let doc = document();
    let create = &schema(&doc, "suite.user.v1.CreateUserRequest")["properties"];
    let password = &create["password"];
    assert_eq!(password["minLength"], domain::MIN_PASSWORD_CHARS);
    assert_eq!(password["maxLength"], domain::MAX_PASSWORD_CHARS);
    assert_eq!(
        password["x-zxcvbn-min-score"],
        suite_testkit::hermetic::<suite_user::Config>().password_min_score
    );
    let min = domain::MIN_PASSWORD_CHARS;
    let max = domain::MAX_PASSWORD_CHARS;
    let password = |raw: String| NewPassword::parse(suite_proto::Password::parse(raw).ok());
    assert!(password("x".repeat(min)).is_ok());
    assert!(password("x".repeat(min - 1)).is_err());
    assert!(password("x".repeat(max)).is_ok());
    assert!(password("x".repeat(max + 1)).is_err());
    assert_eq!(
        create["roles"]["items"]["enum"],
        json!(domain::ASSIGNABLE_ROLES)
    );
    let display_max = create["displayName"]["maxLength"].as_u64().expect("max") as usize;
    assert!(DisplayName::parse(&"é".repeat(display_max)).is_ok());
    assert!(DisplayName::parse(&"é".repeat(display_max + 1)).is_err());
    assert!(DisplayName::parse("a\u{7}b").is_err());
    assert!(DisplayName::parse("a\u{202e}b").is_err());
    assert_eq!(
        create["username"]["pattern"], "^[A-Za-z0-9_.-]{3,32}$",
        "the samples below follow this pattern"
    );
    for ok in ["abc", "ABC", "a_b.c-D", &"Z".repeat(32)] {
        assert!(Username::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["ab", "a b", " abc", "ab!", "\u{212A}ate", &"z".repeat(33)] {
        assert!(Username::parse(bad).is_err(), "{bad}");
    }
    let login = &schema(&doc, "suite.auth.v1.LoginRequest")["properties"]["login"];
    assert_eq!(login["maxLength"], suite_proto::MAX_LOGIN_CHARS);
    let email = &create["email"];
    assert_eq!(email["maxLength"], 254);
    assert!(domain::Email::parse(&format!("{}@example.com", "a".repeat(64))).is_ok());
}

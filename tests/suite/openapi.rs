//! The served OpenAPI document against the routes actually served: the same
//! set both ways, with the right parameters, security and success statuses.
//! (CI also fuzzes the running suite from the document with schemathesis:
//! `scripts/openapi_fuzz.sh`.)

use crate::helpers::spawn_suite;
use serde_json::Value;
use std::collections::BTreeSet;
use suite_gateway::routes::RouteTable;
use suite_testkit::Backend;

const SAMPLE_ID: &str = "01a216e4-4d21-773d-b270-03fa587d21ab";

fn route_table() -> RouteTable {
    let pool = prost_reflect::DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptors");
    RouteTable::from_pool(
        &pool,
        &[suite_gateway::USER_SERVICE, suite_gateway::AUTH_SERVICE],
    )
    .expect("routes")
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
            assert_eq!(
                op["requestBody"].is_object(),
                !route.body.is_empty(),
                "{method} {path}: request body"
            );
            // And it is really there: anything but "no such route"/405.
            let body = (!route.body.is_empty()).then(|| serde_json::json!({}));
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

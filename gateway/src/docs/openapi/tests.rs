//! The document against the contract: required fields, rules, masks and
//! event streams as a client generator reads them.

use super::*;

fn doc() -> Value {
    let pool = DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let routes = RouteTable::from_pool(&pool, &crate::ROUTED_SERVICES).expect("routes");
    document(&routes, &pool)
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

#[test]
fn required_fields_are_listed_and_neither_null_nor_empty() {
    let doc = doc();
    let login = schema(&doc, "suite.auth.v1.LoginRequest");
    assert_eq!(login["required"], json!(["login", "password"]));
    assert_eq!(login["properties"]["login"]["type"], "string");
    assert_eq!(login["properties"]["login"]["minLength"], 1);
    assert_eq!(login["properties"]["password"]["minLength"], 1);
    assert_eq!(login["properties"]["password"]["writeOnly"], true);
    // Optional: null and "" mean unset, as the gateway reads them.
    assert_eq!(
        login["properties"]["userAgent"]["type"],
        json!(["string", "null"])
    );
    let create = schema(&doc, "suite.user.v1.CreateUserRequest");
    assert_eq!(create["properties"]["username"]["type"], "string");
    let refresh = schema(&doc, "suite.auth.v1.RefreshRequest");
    assert_eq!(refresh["properties"]["refreshToken"]["minLength"], 1);
    // The inline body of ChangePassword (its `id` is in the path).
    let change = &doc["paths"]["/api/v1/users/{id}:changePassword"]["post"]["requestBody"];
    assert_eq!(change["required"], true);
    let body = &change["content"]["application/json"]["schema"];
    assert_eq!(body["required"], json!(["newPassword"]));
    assert_eq!(body["properties"]["newPassword"]["minLength"], 8);
    assert!(body["properties"].get("id").is_none(), "{body}");
    let user = schema(&doc, "suite.user.v1.User");
    assert_eq!(user["properties"]["createTime"]["readOnly"], true);
    // An optional string with rules: "", a value by the rules, or null,
    // each alternative typed (generators then keep the format).
    assert_eq!(
        user["properties"]["email"]["anyOf"],
        json!([
            { "type": "string", "maxLength": 0 },
            { "type": "string", "format": "email" },
            { "type": "null" }
        ])
    );
    assert!(user["properties"]["email"].get("type").is_none());
    // A message whose JSON is a string (a Timestamp) is never "": its
    // form or null.
    assert_eq!(
        user["properties"]["createTime"]["type"],
        json!(["string", "null"])
    );
    assert_eq!(user["properties"]["createTime"]["format"], "date-time");
}

#[test]
fn roles_masks_and_what_a_schema_cannot_check_are_described() {
    let doc = doc();
    for name in ["suite.user.v1.User", "suite.user.v1.CreateUserRequest"] {
        let roles = &schema(&doc, name)["properties"]["roles"];
        assert_eq!(roles["items"]["enum"], json!(["user", "admin"]), "{name}");
        let display = &schema(&doc, name)["properties"]["displayName"];
        assert_eq!(display["x-visible-text"], true, "{name}");
        assert_eq!(display["maxLength"], 64, "{name}");
    }
    let create = schema(&doc, "suite.user.v1.CreateUserRequest");
    assert_eq!(create["properties"]["password"]["x-zxcvbn-min-score"], 3);
    let update = &doc["paths"]["/api/v1/users/{id}"]["patch"];
    let mask = update["parameters"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "updateMask"))
        .expect("updateMask");
    let pattern = mask["schema"]["anyOf"][1]["pattern"]
        .as_str()
        .expect("a mask pattern");
    assert!(pattern.contains("displayName"), "{pattern}");
    let list = &doc["paths"]["/api/v1/users"]["get"]["parameters"];
    let token = list
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "pageToken"))
        .expect("pageToken");
    assert!(
        token["description"]
            .as_str()
            .is_some_and(|d| d.contains("opaque")),
        "{token}"
    );
}

#[test]
fn a_streaming_operation_is_an_event_stream_of_its_message() {
    let doc = doc();
    let op = &doc["paths"]["/api/v1/users/me/events"]["get"];
    let ok = &op["responses"]["200"];
    let media = &ok["content"]["text/event-stream"];
    assert_eq!(media["schema"], json!({ "type": "string" }));
    assert_eq!(
        media["x-event-data"],
        json!({ "$ref": "#/components/schemas/suite.user.v1.Event" })
    );
    assert!(ok["content"].get("application/json").is_none(), "{ok}");
    assert!(doc["components"]["schemas"]["suite.user.v1.Event"]["properties"]["id"].is_object());
    let description = ok["description"].as_str().expect("description");
    assert!(description.contains("Last-Event-ID"), "{description}");
    assert!(description.contains("event: error"), "{description}");
    let parameters = op["parameters"].as_array().expect("parameters");
    let header = parameters
        .iter()
        .find(|p| p["in"] == "header")
        .expect("a header parameter");
    assert_eq!(header["name"], "Last-Event-ID");
    assert_eq!(header["schema"]["format"], "uuid");
    assert!(parameters.iter().any(|p| p["name"] == "lastEventId"));
    for code in ["401", "403", "503"] {
        assert!(op["responses"].get(code).is_some(), "{code}");
    }
    // The admins' stream too; a unary operation stays JSON.
    assert!(
        doc["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"]
            .get("text/event-stream")
            .is_some()
    );
    let unary = &doc["paths"]["/api/v1/users/{id}"]["get"]["responses"]["200"]["content"];
    assert!(unary.get("application/json").is_some(), "{unary}");
}

/// Every Duration the document's pattern admits is one the gateway parses
/// (the proto3 JSON range is ±315,576,000,000 s).
#[test]
fn durations_the_pattern_admits_are_parsed() {
    let pool = DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let duration = pool
        .get_message_by_name("google.protobuf.Duration")
        .expect("Duration");
    for sample in [
        "0s",
        "-0s",
        "00s",
        "1.5s",
        "0.000000001s",
        "99999999999.999999999s",
        "-99999999999.999999999s",
    ] {
        let json = serde_json::Value::String(sample.to_owned());
        let parsed = prost_reflect::DynamicMessage::deserialize(duration.clone(), json);
        assert!(parsed.is_ok(), "{sample}: {parsed:?}");
    }
    // Past the range: refused, and outside the pattern.
    let json = serde_json::Value::String("315576000001s".to_owned());
    assert!(prost_reflect::DynamicMessage::deserialize(duration, json).is_err());
    let pattern =
        super::schema::well_known("google.protobuf.Duration").expect("schema")["pattern"].clone();
    assert_eq!(pattern, r"^-?[0-9]{1,11}(\.[0-9]{1,9})?s$");
}

/// An optional Duration is its pattern or null, never "" (which the proto3
/// JSON mapping refuses for a message).
#[test]
fn an_optional_duration_admits_no_empty_string() {
    let doc = doc();
    let ttl = &schema(&doc, "suite.auth.v1.Client")["properties"]["accessTokenTtl"];
    assert!(!ttl.to_string().contains("maxLength"), "{ttl}");
    assert!(ttl.to_string().contains("[0-9]{1,11}"), "{ttl}");
}

/// The operation of `method` on `path`.
fn op<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "no {method} {path}");
    op
}

#[test]
fn scoped_operations_declare_their_scope() {
    let doc = doc();
    for (path, method, scope) in [
        ("/api/v1/users/{id}", "get", "user:read"),
        ("/api/v1/users/{id}", "patch", "user:write"),
        ("/api/v1/users", "get", "admin"),
    ] {
        let op = op(&doc, path, method);
        assert_eq!(
            op["security"],
            json!([{ "bearerAuth": [scope] }, { "oauth2": [scope] }]),
            "{method} {path}"
        );
        assert_eq!(op["x-required-scope"], scope, "{method} {path}");
        let description = op["description"].as_str().expect("description");
        assert!(
            description.contains(&format!("Needs the `{scope}` scope")),
            "{description}"
        );
        // The 403 names the scope, and its challenge.
        let forbidden = &op["responses"]["403"];
        let about = forbidden["description"].as_str().expect("403 description");
        assert!(about.contains(&format!("`{scope}`")), "{about}");
        assert!(about.contains("insufficient_scope"), "{about}");
        assert!(forbidden["headers"]["WWW-Authenticate"].is_object());
        assert_eq!(
            forbidden["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
    }
    let login = op(&doc, "/api/v1/auth/login", "post");
    assert_eq!(login["security"], json!([]));
    assert!(login.get("x-required-scope").is_none());
    assert!(login["responses"].get("403").is_none());
}

#[test]
fn the_security_schemes_take_every_token_and_list_the_scopes() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0", "scopes on bearerAuth need 3.1");
    let schemes = &doc["components"]["securitySchemes"];
    let bearer = schemes["bearerAuth"]["description"]
        .as_str()
        .expect("bearer");
    assert!(bearer.contains("suitepat_"), "{bearer}");
    assert!(bearer.contains("OAuth"), "{bearer}");
    let oauth2 = &schemes["oauth2"];
    assert_eq!(oauth2["type"], "oauth2");
    let code = &oauth2["flows"]["authorizationCode"];
    assert_eq!(code["authorizationUrl"], "/oauth2/authorize");
    assert_eq!(code["tokenUrl"], "/oauth2/token");
    for scope in [
        "user:read",
        "user:write",
        "admin",
        "openid",
        "profile",
        "email",
        "offline_access",
    ] {
        assert!(code["scopes"][scope].is_string(), "{scope}");
    }
    assert_eq!(
        code["scopes"]["user:read"],
        "Read your profile, sessions and events"
    );
    assert_eq!(
        schemes["openIdConnect"]["openIdConnectUrl"],
        "/.well-known/openid-configuration"
    );
}

/// Every operation's requirements are the access rule the gateway enforces
/// for its method: none for a public one, the scope on both schemes for a
/// scoped one, first-party tokens only for the rest.
#[test]
fn every_operation_declares_the_access_it_is_checked_for() {
    let pool = DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let routes = RouteTable::from_pool(&pool, &crate::ROUTED_SERVICES).expect("routes");
    let doc = document(&routes, &pool);
    let listed: Vec<&str> =
        doc["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"]["scopes"]
            .as_object()
            .expect("scopes")
            .keys()
            .map(String::as_str)
            .collect();
    for route in routes.routes() {
        let method = route.http_method.as_str().to_ascii_lowercase();
        let op = op(&doc, &openapi_path(route), &method);
        let name = route.method.full_name();
        let access = access(route);
        assert_eq!(route.public, access == MethodAccess::Open, "{name}");
        assert_eq!(op["security"], security(access), "{name}");
        let description = op["description"].as_str().expect("description");
        match access {
            MethodAccess::Open => assert_eq!(op["security"], json!([]), "{name}"),
            MethodAccess::Scope(scope) => {
                assert!(listed.contains(&scope), "{name}: {scope} not in oauth2");
                assert_eq!(op["x-required-scope"], scope, "{name}");
                assert!(description.contains(&format!("`{scope}`")), "{name}");
                let forbidden = op["responses"]["403"]["description"].as_str();
                assert!(forbidden.is_some_and(|d| d.contains(scope)), "{name}");
            }
            MethodAccess::FirstParty => {
                assert_eq!(op["security"], json!([{ "bearerAuth": [] }]), "{name}");
                assert!(description.contains("tokens are refused"), "{name}");
                assert!(op.get("x-required-scope").is_none(), "{name}");
                assert_eq!(
                    op["responses"]["403"]["$ref"],
                    "#/components/responses/Forbidden"
                );
            }
        }
    }
}

/// No routed method is first-party only today (`UNSCOPED_ROUTES` must stay
/// empty), so the rule's rendering is checked on its own.
#[test]
fn a_first_party_operation_takes_first_party_tokens_only() {
    assert_eq!(
        security(MethodAccess::FirstParty),
        json!([{ "bearerAuth": [] }])
    );
    let note = access_note(MethodAccess::FirstParty).expect("a note");
    assert!(
        note.contains("OAuth access tokens and personal access tokens are refused"),
        "{note}"
    );
    assert_eq!(access_note(MethodAccess::Open), None);
}

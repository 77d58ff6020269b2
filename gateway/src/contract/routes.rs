//! The REST surface, read from the contract itself: every RPC's
//! `google.api.http` rule (and its `additional_bindings`) becomes a route, so
//! an RPC that gains an annotation is served without new gateway code.

use crate::contract::template::PathTemplate;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};

/// One HTTP binding of one RPC, resolved against the contract's descriptors
/// once, at start-up: a rule that names a field the messages lack stops the
/// gateway there instead of failing its calls.
#[derive(Debug)]
pub struct Route {
    pub http_method: http::Method,
    pub template: PathTemplate,
    pub method: MethodDescriptor,
    /// What the request body fills (the rule's `body`).
    pub body: RequestBody,
    /// What the answer sends (the rule's `response_body`).
    pub response_body: ResponseBody,
    /// The status of a success (from `suite.api.v1.http`; 200 by default).
    pub success: http::StatusCode,
    /// Served without an access token.
    pub public: bool,
    /// With 201: the field of what is sent that, appended to the path, is
    /// the `Location`; a path of fields when nested (`client.client_id`).
    pub location_field: Option<Vec<FieldDescriptor>>,
    /// The rate-limit bucket its calls count against (`rate_limit`).
    pub rate: RateClass,
    /// How long any cache may keep a success (`cache_max_age_secs`); `None`:
    /// not at all (the `no-store` every answer carries by default).
    pub cache_max_age: Option<std::time::Duration>,
    /// A PATCH's `update_mask`, which the body's keys imply when the request
    /// leaves it out.
    pub implied_mask: Option<FieldDescriptor>,
    /// The request's string field that a `Last-Event-ID` header fills (an
    /// event stream's resumption).
    pub resume_field: Option<FieldDescriptor>,
    /// An event stream's string fields of what is sent that become each
    /// event's `id:` and `event:` lines.
    pub event_fields: EventFields,
}

/// The string fields of a streamed message that frame its event.
#[derive(Debug, Clone, Default)]
pub struct EventFields {
    /// `id`: what a client sends back as `Last-Event-ID`.
    pub id: Option<FieldDescriptor>,
    /// `type`: the event's name.
    pub kind: Option<FieldDescriptor>,
}

/// What a request body fills (`google.api.http`'s `body`).
#[derive(Debug, Clone)]
pub enum RequestBody {
    /// Nothing: a route without a body refuses one.
    None,
    /// The whole request message (`body: "*"`).
    Whole,
    /// One message field of the request (`body: "user"`), and nothing else.
    Field(FieldDescriptor, MessageDescriptor),
}

impl RequestBody {
    /// The field the body fills, if it fills one.
    pub fn field(&self) -> Option<&FieldDescriptor> {
        match self {
            Self::Field(field, _) => Some(field),
            Self::None | Self::Whole => None,
        }
    }
}

/// What a success sends (`google.api.http`'s `response_body`).
#[derive(Debug, Clone)]
pub enum ResponseBody {
    /// The whole response message.
    Whole,
    /// One field of the response.
    Field(FieldDescriptor),
}

impl Route {
    /// The message whose fields a success sends: the `response_body`
    /// field's message, or the whole response.
    pub fn sent_message(&self) -> MessageDescriptor {
        match &self.response_body {
            ResponseBody::Field(field) => match field.kind() {
                Kind::Message(m) => m,
                _ => self.method.output(),
            },
            ResponseBody::Whole => self.method.output(),
        }
    }
}

/// The rate-limit bucket of a route (the contract's `suite.api.v1.RateLimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateClass {
    /// The general per-client bucket.
    General,
    /// The strict bucket of the open endpoints attackers hammer.
    Auth,
}

/// Path variables bound by a match: (field path, value).
pub type Bindings = Vec<(String, String)>;

/// Why a request has no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    NotFound,
    /// The path exists with these other methods.
    MethodNotAllowed(Vec<http::Method>),
}

#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
}

#[derive(Debug, thiserror::Error)]
#[error("bad google.api.http rule on {method}: {reason}")]
pub struct RouteError {
    pub method: String,
    pub reason: String,
}

impl RouteTable {
    /// Every annotated method of the services named in `services`.
    pub fn from_pool(pool: &DescriptorPool, services: &[&str]) -> Result<Self, RouteError> {
        let Some(http_ext) = pool.get_extension_by_name("google.api.http") else {
            return Ok(Self { routes: Vec::new() });
        };
        let mut routes = Vec::new();
        for service in pool
            .services()
            .filter(|s| services.contains(&s.full_name()))
        {
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&http_ext) {
                    continue;
                }
                let Value::Message(rule) = options.get_extension(&http_ext).into_owned() else {
                    continue;
                };
                let mut rules = vec![rule.clone()];
                if let Some(Value::List(more)) = rule
                    .get_field_by_name("additional_bindings")
                    .map(|v| v.into_owned())
                {
                    rules.extend(more.into_iter().filter_map(|v| match v {
                        Value::Message(m) => Some(m),
                        _ => None,
                    }));
                }
                let presentation = pool
                    .get_extension_by_name("suite.api.v1.http")
                    .filter(|ext| options.has_extension(ext))
                    .and_then(|ext| match options.get_extension(&ext).into_owned() {
                        Value::Message(m) => Some(m),
                        _ => None,
                    });
                for rule in rules {
                    let mut r = route(&method, &rule)?;
                    if let Some(p) = &presentation {
                        apply_presentation(&mut r, p).map_err(|reason| RouteError {
                            method: method.full_name().to_owned(),
                            reason,
                        })?;
                    }
                    routes.push(r);
                }
            }
        }
        // Literal-rich templates first, so `/users/me:thing` beats `/users/{id}`.
        routes.sort_by_key(|r| std::cmp::Reverse(r.template.specificity()));
        Ok(Self { routes })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for a request, with its bound path variables.
    pub fn find(&self, method: &http::Method, path: &str) -> Result<(&Route, Bindings), NoRoute> {
        find(&self.routes, |r| r, method, path)
    }

    /// The routes, to be resolved into what serves them.
    pub fn into_routes(self) -> Vec<Route> {
        self.routes
    }
}

/// The entry of `entries` (in table order) whose route matches a request,
/// with its bound path variables. `HEAD` matches the `GET` route (RFC 9110
/// §9.3.2: it is served as the `GET`, whose answer loses its body on the
/// way out, see `crate::http::head`; the contract cannot bind `HEAD` itself),
/// and a 405 lists it beside `GET`.
pub fn find<'a, T>(
    entries: &'a [T],
    route_of: impl Fn(&T) -> &Route,
    method: &http::Method,
    path: &str,
) -> Result<(&'a T, Bindings), NoRoute> {
    let method = if method == http::Method::HEAD {
        &http::Method::GET
    } else {
        method
    };
    // Each template is matched (and its variables decoded) once: the
    // matching entries, in table order.
    let matching: Vec<(&'a T, Bindings)> = entries
        .iter()
        .filter_map(|entry| Some((entry, route_of(entry).template.matches(path)?)))
        .collect();
    // `/users/x:changePassword` names the custom method, whatever the
    // HTTP method: it must not fall through to `/users/{id}` with the id
    // `x:changePassword` (which would make PATCH on it a 400, not a 405).
    let has_verb = matching
        .iter()
        .any(|(entry, _)| route_of(entry).template.verb().is_some());
    let mut allowed = Vec::new();
    for (entry, vars) in matching {
        let route = route_of(entry);
        if has_verb && route.template.verb().is_none() {
            continue;
        }
        if route.http_method == method {
            return Ok((entry, vars));
        }
        if !allowed.contains(&route.http_method) {
            allowed.push(route.http_method.clone());
        }
    }
    if allowed.is_empty() {
        return Err(NoRoute::NotFound);
    }
    if let Some(get) = allowed.iter().position(|m| m == http::Method::GET) {
        allowed.insert(get + 1, http::Method::HEAD);
    }
    Err(NoRoute::MethodNotAllowed(allowed))
}

/// Applies a method's `suite.api.v1.http` options to its routes.
fn apply_presentation(route: &mut Route, p: &DynamicMessage) -> Result<(), String> {
    if let Some(Value::I32(code)) = p.get_field_by_name("success_code").map(|v| v.into_owned())
        && code != 0
    {
        route.success = u16::try_from(code)
            .ok()
            .and_then(|c| http::StatusCode::from_u16(c).ok())
            .filter(http::StatusCode::is_success)
            .ok_or_else(|| format!("success_code {code} is not a 2xx status"))?;
    }
    if let Some(Value::Bool(public)) = p.get_field_by_name("public").map(|v| v.into_owned()) {
        route.public = public;
    }
    let location_field = string_field(p, "location_field");
    if !location_field.is_empty() {
        if let ResponseBody::Field(field) = &route.response_body
            && !matches!(field.kind(), Kind::Message(_))
        {
            return Err(format!(
                "location_field {location_field:?} needs a message to look in, and the \
                 response_body {} is none",
                field.name()
            ));
        }
        route.location_field = Some(field_path(route.sent_message(), &location_field)?);
    }
    route.rate = match p.get_field_by_name("rate_limit").map(|v| v.into_owned()) {
        Some(Value::EnumNumber(0)) | None => RateClass::General,
        Some(Value::EnumNumber(1)) => RateClass::Auth,
        Some(other) => return Err(format!("unknown rate_limit {other:?}")),
    };
    if let Some(Value::U32(secs)) = p
        .get_field_by_name("cache_max_age_secs")
        .map(|v| v.into_owned())
        && secs > 0
    {
        route.cache_max_age = Some(std::time::Duration::from_secs(secs.into()));
    }
    Ok(())
}

/// The fields a dotted path (`client.client_id`) names, from `message` down:
/// every step but the last a singular message, the last a string.
fn field_path(message: MessageDescriptor, path: &str) -> Result<Vec<FieldDescriptor>, String> {
    let mut fields = Vec::new();
    let mut current = Some(message);
    for name in path.split('.') {
        let Some(message) = current.take() else {
            return Err(format!(
                "location_field {path:?}: {name:?} is past a non-message field"
            ));
        };
        let field = message.get_field_by_name(name).ok_or_else(|| {
            format!(
                "location_field {path:?}: {name:?} is no field of {}",
                message.full_name()
            )
        })?;
        if field.is_list() || field.is_map() {
            return Err(format!("location_field {path:?}: {name:?} is repeated"));
        }
        if let Kind::Message(inner) = field.kind() {
            current = Some(inner);
        }
        fields.push(field);
    }
    match fields.last().map(FieldDescriptor::kind) {
        Some(Kind::String) => Ok(fields),
        _ => Err(format!("location_field {path:?} is not a string field")),
    }
}

/// A string field of an option's message; "" when unset.
fn string_field(rule: &DynamicMessage, field: &str) -> String {
    match rule.get_field_by_name(field).map(|v| v.into_owned()) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    }
}

fn route(method: &MethodDescriptor, rule: &DynamicMessage) -> Result<Route, RouteError> {
    let fail = |reason: String| RouteError {
        method: method.full_name().to_owned(),
        reason,
    };
    let mut pattern = None;
    for (name, verb) in [
        ("get", http::Method::GET),
        ("put", http::Method::PUT),
        ("post", http::Method::POST),
        ("delete", http::Method::DELETE),
        ("patch", http::Method::PATCH),
    ] {
        let t = string_field(rule, name);
        if !t.is_empty() {
            pattern = Some((verb, t));
        }
    }
    if pattern.is_none()
        && let Some(Value::Message(custom)) =
            rule.get_field_by_name("custom").map(|v| v.into_owned())
    {
        let kind = string_field(&custom, "kind");
        let path = string_field(&custom, "path");
        let verb = http::Method::from_bytes(kind.as_bytes()).map_err(|e| fail(e.to_string()))?;
        // The gateway answers every HEAD with its GET (`crate::http::head`).
        if verb == http::Method::HEAD {
            return Err(fail(
                "HEAD is served wherever GET is: bind GET instead".into(),
            ));
        }
        pattern = Some((verb, path));
    }
    // Server streams are served as Server-Sent Events; a request stream has
    // no REST form: refused at start-up rather than failing every call.
    if method.is_client_streaming() {
        return Err(fail(
            "a client-streaming method cannot be served over REST".into(),
        ));
    }
    let (http_method, path) = pattern.ok_or_else(|| fail("no HTTP method".into()))?;
    let template = PathTemplate::parse(&path).map_err(|e| fail(e.to_string()))?;
    let input = method.input();
    let body = match string_field(rule, "body").as_str() {
        "" => RequestBody::None,
        "*" => RequestBody::Whole,
        name => match input.get_field_by_name(name) {
            Some(field) => match field.kind() {
                Kind::Message(message) if !field.is_list() && !field.is_map() => {
                    RequestBody::Field(field, message)
                }
                _ => return Err(fail(format!("body field {name:?} is not a message"))),
            },
            None => {
                return Err(fail(format!(
                    "body {name:?} is no field of {}",
                    input.full_name()
                )));
            }
        },
    };
    let response_body = match string_field(rule, "response_body").as_str() {
        "" => ResponseBody::Whole,
        name => ResponseBody::Field(method.output().get_field_by_name(name).ok_or_else(|| {
            fail(format!(
                "response_body {name:?} is no field of {}",
                method.output().full_name()
            ))
        })?),
    };
    // PATCH with a body field: the body's keys imply the mask (`transcode`).
    let implied_mask = (http_method == http::Method::PATCH)
        .then(|| input.get_field_by_name("update_mask"))
        .flatten()
        .filter(|f| matches!(f.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask"));
    let resume_field = method
        .is_server_streaming()
        .then(|| input.get_field_by_name(RESUME_FIELD))
        .flatten()
        .filter(|f| matches!(f.kind(), Kind::String) && !f.is_list());
    let mut route = Route {
        http_method,
        template,
        method: method.clone(),
        body,
        response_body,
        success: http::StatusCode::OK,
        public: false,
        location_field: None,
        rate: RateClass::General,
        cache_max_age: None,
        implied_mask,
        resume_field,
        event_fields: EventFields::default(),
    };
    if method.is_server_streaming() {
        let sent = route.sent_message();
        let string = |name: &str| {
            sent.get_field_by_name(name)
                .filter(|f| matches!(f.kind(), Kind::String) && !f.is_list())
        };
        route.event_fields = EventFields {
            id: string("id"),
            kind: string("type"),
        };
    }
    Ok(route)
}

/// The request field that an event stream's `Last-Event-ID` fills.
const RESUME_FIELD: &str = "last_event_id";

/// A field's `google.api.field_behavior` values, by name (`REQUIRED`,
/// `OUTPUT_ONLY`, `IDENTIFIER`, …).
pub fn field_behaviors(field: &FieldDescriptor) -> Vec<String> {
    let Some(ext) = field
        .parent_pool()
        .get_extension_by_name("google.api.field_behavior")
    else {
        return Vec::new();
    };
    let options = field.options();
    if !options.has_extension(&ext) {
        return Vec::new();
    }
    let Kind::Enum(kind) = ext.kind() else {
        return Vec::new();
    };
    match options.get_extension(&ext).into_owned() {
        Value::List(values) => values
            .iter()
            .filter_map(|v| match v {
                Value::EnumNumber(n) => kind.get_value(*n).map(|v| v.name().to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract declares the strict bucket for the open POSTs and the
    /// password and second-factor code checks, and caching for the well-known documents (and for
    /// nothing else).
    #[test]
    fn declared_rate_classes_and_caching_are_the_inferred_ones() {
        let pool = DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
        let table = RouteTable::from_pool(&pool, &crate::ROUTED_SERVICES).expect("routes");
        assert!(table.routes().len() > 10);
        for r in table.routes() {
            let name = format!("{} {}", r.http_method, r.template.as_str());
            let checks_secret = [":changePassword", "/factors/{factor_id}:confirm"]
                .iter()
                .any(|end| r.template.as_str().ends_with(end));
            let strict = (r.public && r.http_method == http::Method::POST) || checks_secret;
            let expected = if strict {
                RateClass::Auth
            } else {
                RateClass::General
            };
            assert_eq!(r.rate, expected, "{name}");
            let cached = r.template.as_str().starts_with("/.well-known/");
            assert_eq!(
                r.cache_max_age,
                cached.then_some(std::time::Duration::from_secs(300)),
                "{name}"
            );
        }
    }

    /// CreateClient's `Location` comes from a nested field
    /// (`client.client_id`): the path resolves to the two fields.
    #[test]
    fn a_nested_location_field_resolves_to_its_path_of_fields() {
        let pool = DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
        let table = RouteTable::from_pool(&pool, &crate::ROUTED_SERVICES).expect("routes");
        let create = table
            .routes()
            .iter()
            .find(|r| r.method.name() == "CreateClient")
            .expect("CreateClient routed");
        let names: Vec<_> = create
            .location_field
            .as_ref()
            .expect("a location field")
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        assert_eq!(names, ["client", "client_id"]);
        assert!(
            table
                .routes()
                .iter()
                .all(|r| r.method.parent_service().name() != "OAuthService"),
            "OAuthService has no REST routes"
        );
    }

    /// HEAD finds the GET route of its path (with its variables), and a 405
    /// lists HEAD wherever it lists GET, never where there is no GET.
    #[test]
    fn head_is_served_by_the_get_route_and_allowed_beside_it() {
        let pool = DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
        let table = RouteTable::from_pool(&pool, &crate::ROUTED_SERVICES).expect("routes");
        let head = http::Method::HEAD;
        for path in ["/api/v1/users/u1", "/api/v1/users/me", "/api/v1/users"] {
            let (route, vars) = table.find(&head, path).expect(path);
            let (get, get_vars) = table.find(&http::Method::GET, path).expect(path);
            assert_eq!(route.http_method, http::Method::GET, "{path}");
            assert_eq!(route.method.full_name(), get.method.full_name(), "{path}");
            assert_eq!(vars, get_vars, "{path}");
        }
        let allowed = |method: http::Method, path: &str| match table.find(&method, path) {
            Err(NoRoute::MethodNotAllowed(allowed)) => allowed
                .iter()
                .map(http::Method::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            other => panic!("{method} {path}: {other:?}"),
        };
        assert_eq!(
            allowed(http::Method::PUT, "/api/v1/users/me"),
            "GET, HEAD, PATCH, DELETE"
        );
        assert_eq!(allowed(head.clone(), "/api/v1/auth/login"), "POST");
        assert_eq!(
            allowed(head.clone(), "/api/v1/users/me:changePassword"),
            "POST"
        );
        assert!(matches!(
            table.find(&head, "/api/v1/nothing"),
            Err(NoRoute::NotFound)
        ));
    }

    /// The route error of a contract with `service` (one file, `test/t.proto`,
    /// whose messages are `Thing` and `Other`) beside the suite's.
    fn refused(service: serde_json::Value) -> RouteError {
        let mut pool =
            DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
        let set = pool
            .get_message_by_name("google.protobuf.FileDescriptorSet")
            .expect("descriptor.proto");
        let file = serde_json::json!({ "file": [{
            "name": "test/t.proto",
            "package": "test",
            "syntax": "proto3",
            "dependency": ["google/api/annotations.proto", "suite/api/v1/annotations.proto"],
            "messageType": [
                { "name": "Thing", "field": [
                    { "name": "other", "number": 1, "label": "LABEL_OPTIONAL",
                      "type": "TYPE_MESSAGE", "typeName": ".test.Other", "jsonName": "other" },
                    { "name": "note", "number": 2, "label": "LABEL_OPTIONAL",
                      "type": "TYPE_STRING", "jsonName": "note" },
                ] },
                { "name": "Other" },
            ],
            "service": [service],
        }]});
        let set = DynamicMessage::deserialize(set, file).expect("a descriptor set");
        pool.decode_file_descriptor_set(prost::Message::encode_to_vec(&set).as_slice())
            .expect("added");
        RouteTable::from_pool(&pool, &["test.T"]).expect_err("refused")
    }

    /// One method `M` of service `T` from `Thing` to `Thing`, with `options`.
    fn service(options: serde_json::Value, client_streaming: bool) -> serde_json::Value {
        serde_json::json!({ "name": "T", "method": [{
            "name": "M",
            "inputType": ".test.Thing",
            "outputType": ".test.Thing",
            "clientStreaming": client_streaming,
            "options": options,
        }]})
    }

    /// HEAD is the GET's: a contract that binds it is refused at start-up.
    #[test]
    fn a_head_binding_is_refused_at_start_up() {
        let options = serde_json::json!({ "[google.api.http]": {
            "custom": { "kind": "HEAD", "path": "/things" },
        } });
        let err = refused(service(options, false));
        assert_eq!(err.method, "test.T.M");
        assert!(err.reason.contains("HEAD"), "{err}");
    }

    /// A request stream has no REST form: the gateway does not start with
    /// one annotated, rather than failing each of its calls.
    #[test]
    fn an_annotated_client_streaming_method_is_refused_at_start_up() {
        let options =
            serde_json::json!({ "[google.api.http]": { "post": "/upload", "body": "*" } });
        let err = refused(service(options, true));
        assert_eq!(err.method, "test.T.M");
        assert!(err.reason.contains("client-streaming"), "{err}");
    }

    /// A rule that names a field its messages lack (or a body field that is
    /// no message) stops the gateway at start-up, instead of failing every
    /// call of the route.
    #[test]
    fn a_rule_naming_a_field_the_messages_lack_is_refused_at_start_up() {
        for (rule, presentation, expected) in [
            (
                serde_json::json!({ "post": "/t", "body": "missing" }),
                None,
                "body \"missing\"",
            ),
            (
                serde_json::json!({ "post": "/t", "body": "note" }),
                None,
                "not a message",
            ),
            (
                serde_json::json!({ "get": "/t", "response_body": "missing" }),
                None,
                "response_body \"missing\"",
            ),
            (
                serde_json::json!({ "post": "/t", "body": "*" }),
                Some(serde_json::json!({ "success_code": 201, "location_field": "missing" })),
                "location_field \"missing\"",
            ),
            (
                serde_json::json!({ "post": "/t", "body": "*" }),
                Some(serde_json::json!({ "success_code": 201, "location_field": "note.deeper" })),
                "past a non-message field",
            ),
        ] {
            let mut options = serde_json::json!({ "[google.api.http]": rule });
            if let Some(p) = presentation {
                options["[suite.api.v1.http]"] = p;
            }
            let err = refused(service(options, false));
            assert_eq!(err.method, "test.T.M");
            assert!(err.reason.contains(expected), "{expected}: {err}");
        }
    }
}

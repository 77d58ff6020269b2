//! `suitectl clients …`: the OAuth 2.0 / OpenID Connect clients, over the
//! auth service's ClientService. A confidential client's secret is printed
//! once, at creation and rotation: the service keeps only its hash.

use super::{
    connect::Conn,
    error::CtlError,
    output::{self, Format},
};
use serde_json::{Value, json};
use suite_proto::auth::{
    Client, ClientType, CreateClientRequest, DeleteClientRequest, GetClientRequest,
    ListClientsRequest, RotateClientSecretRequest, UpdateClientRequest,
};

/// Public (browser and native apps: PKCE, no secret) or confidential (a
/// server or a machine that keeps a secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Public,
    Confidential,
}

/// The settable fields of a client. On `create`, what is not given takes
/// the service's default; on `update`, only what is given changes (a
/// repeated flag replaces the whole list).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientFields {
    /// The application's name, shown on the consent page.
    #[arg(long)]
    pub name: Option<String>,
    /// A redirect URI, matched exactly (repeat for several).
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser (repeat for several).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Removes every post-logout redirect URI (`update`: a flag that is
    /// not given changes nothing, so an empty list needs its own).
    #[arg(long, conflicts_with = "post_logout_redirect_uris")]
    pub no_post_logout_redirect_uris: bool,
    /// An allowed grant type: authorization_code, refresh_token,
    /// client_credentials, urn:ietf:params:oauth:grant-type:device_code
    /// (repeat for several).
    #[arg(long = "grant-type", value_name = "GRANT")]
    pub grant_types: Vec<String>,
    /// A scope the client may ask for, e.g. openid, profile, email,
    /// offline_access, user:read, user:write, admin (repeat for several).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// A first-party client, whose users are not asked for consent
    /// (`--first-party=false` to turn it off).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub first_party: Option<bool>,
    /// Where back-channel logout tokens are POSTed (empty: none).
    #[arg(long, value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    /// The ID token's signature algorithm.
    #[arg(long, value_parser = ["RS256", "ES256", "EdDSA"])]
    pub id_token_alg: Option<String>,
    /// Seconds the client's access tokens live (at most an hour).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(i64).range(1..=3600))]
    pub access_token_ttl: Option<i64>,
}

impl ClientFields {
    /// The client these fields describe, and the mask paths they set.
    fn client(self, client_id: String) -> (Client, Vec<&'static str>) {
        let mut paths = Vec::new();
        let mut client = Client {
            client_id,
            ..Client::default()
        };
        if let Some(name) = self.name {
            client.name = name;
            paths.push("name");
        }
        if !self.redirect_uris.is_empty() {
            client.redirect_uris = self.redirect_uris;
            paths.push("redirect_uris");
        }
        if !self.post_logout_redirect_uris.is_empty() || self.no_post_logout_redirect_uris {
            client.post_logout_redirect_uris = self.post_logout_redirect_uris;
            paths.push("post_logout_redirect_uris");
        }
        if !self.grant_types.is_empty() {
            client.grant_types = self.grant_types;
            paths.push("grant_types");
        }
        if !self.scopes.is_empty() {
            client.scopes = self.scopes;
            paths.push("scopes");
        }
        if let Some(first_party) = self.first_party {
            client.first_party = first_party;
            paths.push("first_party");
        }
        if let Some(uri) = self.backchannel_logout_uri {
            client.backchannel_logout_uri = uri;
            paths.push("backchannel_logout_uri");
        }
        if let Some(alg) = self.id_token_alg {
            client.id_token_signed_response_alg = alg;
            paths.push("id_token_signed_response_alg");
        }
        if let Some(secs) = self.access_token_ttl {
            client.access_token_ttl = Some(prost_types::Duration {
                seconds: secs,
                nanos: 0,
            });
            paths.push("access_token_ttl");
        }
        (client, paths)
    }
}

/// A client and, after a creation or a rotation, its new secret.
pub struct WithSecret {
    pub client: Client,
    /// Empty for a public client.
    pub secret: String,
}

fn client_of(client: Option<Client>) -> Result<Client, CtlError> {
    client.ok_or_else(|| CtlError::Failed("the service answered without the client".into()))
}

pub async fn create(
    conn: &mut Conn,
    kind: Kind,
    fields: ClientFields,
) -> Result<WithSecret, CtlError> {
    if fields.name.is_none() {
        return Err(CtlError::Usage("clients create: --name is required".into()));
    }
    let (mut client, _) = fields.client(String::new());
    client.r#type = match kind {
        Kind::Public => ClientType::Public,
        Kind::Confidential => ClientType::Confidential,
    } as i32;
    let req = conn.req(CreateClientRequest {
        client: Some(client),
    })?;
    let reply = conn
        .clients
        .create_client(req)
        .await
        .map_err(|s| CtlError::from_status("creating the client", &s))?
        .into_inner();
    Ok(WithSecret {
        client: client_of(reply.client)?,
        secret: reply.client_secret,
    })
}

pub async fn get(conn: &mut Conn, client_id: String) -> Result<Client, CtlError> {
    let req = conn.req(GetClientRequest { client_id })?;
    let reply = conn
        .clients
        .get_client(req)
        .await
        .map_err(|s| CtlError::from_status("getting the client", &s))?;
    client_of(reply.into_inner().client)
}

/// Every client, oldest first, through every page.
pub async fn list(conn: &mut Conn) -> Result<Vec<Client>, CtlError> {
    let mut clients = Vec::new();
    let mut page_token = String::new();
    loop {
        let req = conn.req(ListClientsRequest {
            page_size: 100,
            page_token,
        })?;
        let page = conn
            .clients
            .list_clients(req)
            .await
            .map_err(|s| CtlError::from_status("listing clients", &s))?
            .into_inner();
        clients.extend(page.clients);
        if page.next_page_token.is_empty() {
            return Ok(clients);
        }
        page_token = page.next_page_token;
    }
}

/// Changes the fields given, and only those.
pub async fn update(
    conn: &mut Conn,
    client_id: String,
    fields: ClientFields,
) -> Result<Client, CtlError> {
    let (client, paths) = fields.client(client_id);
    if paths.is_empty() {
        return Err(CtlError::Usage(
            "clients update: nothing to change (give --name, --redirect-uri, --scope, …)".into(),
        ));
    }
    let req = conn.req(UpdateClientRequest {
        client: Some(client),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.into_iter().map(str::to_owned).collect(),
        }),
    })?;
    let reply = conn
        .clients
        .update_client(req)
        .await
        .map_err(|s| CtlError::from_status("updating the client", &s))?;
    client_of(reply.into_inner().client)
}

pub async fn delete(conn: &mut Conn, client_id: String) -> Result<(), CtlError> {
    let req = conn.req(DeleteClientRequest { client_id })?;
    conn.clients
        .delete_client(req)
        .await
        .map_err(|s| CtlError::from_status("deleting the client", &s))?;
    Ok(())
}

/// A new secret; the previous one keeps working for
/// `previous_secret_ttl` seconds (the service's default if `None`).
pub async fn rotate_secret(
    conn: &mut Conn,
    client_id: String,
    previous_secret_ttl: Option<i64>,
) -> Result<WithSecret, CtlError> {
    let req = conn.req(RotateClientSecretRequest {
        client_id,
        previous_secret_ttl: previous_secret_ttl
            .map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
    })?;
    let reply = conn
        .clients
        .rotate_client_secret(req)
        .await
        .map_err(|s| CtlError::from_status("rotating the secret", &s))?
        .into_inner();
    Ok(WithSecret {
        client: client_of(reply.client)?,
        secret: reply.client_secret,
    })
}

fn kind(client: &Client) -> &'static str {
    match ClientType::try_from(client.r#type) {
        Ok(ClientType::Public) => "public",
        Ok(ClientType::Confidential) => "confidential",
        Ok(ClientType::Unspecified) | Err(_) => "unknown",
    }
}

pub fn client_json(c: &Client) -> Value {
    json!({
        "client_id": c.client_id,
        "name": c.name,
        "type": kind(c),
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "grant_types": c.grant_types,
        "scopes": c.scopes,
        "first_party": c.first_party,
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "id_token_signed_response_alg": c.id_token_signed_response_alg,
        "access_token_ttl_secs": c.access_token_ttl.as_ref().map(|d| d.seconds),
        "create_time": output::time(c.create_time.as_ref()),
        "update_time": output::time(c.update_time.as_ref()),
        "previous_secret_expire_time": output::time(c.previous_secret_expire_time.as_ref()),
    })
}

/// One client, as `field: value` lines.
pub fn client_text(c: &Client) -> String {
    let ttl = c
        .access_token_ttl
        .as_ref()
        .map(|d| format!("{}s", d.seconds))
        .unwrap_or_default();
    [
        ("client id", c.client_id.clone()),
        ("name", c.name.clone()),
        ("type", kind(c).to_owned()),
        ("redirect uris", c.redirect_uris.join(" ")),
        ("logout uris", c.post_logout_redirect_uris.join(" ")),
        ("grant types", c.grant_types.join(" ")),
        ("scopes", c.scopes.join(" ")),
        ("first party", c.first_party.to_string()),
        ("backchannel", c.backchannel_logout_uri.clone()),
        ("id token alg", c.id_token_signed_response_alg.clone()),
        ("token ttl", ttl),
        ("created", output::time(c.create_time.as_ref())),
        ("updated", output::time(c.update_time.as_ref())),
        (
            "old secret",
            output::time(c.previous_secret_expire_time.as_ref()),
        ),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k:<14}{v}"))
    .collect::<Vec<_>>()
    .join("\n")
}

pub const CLIENT_HEADER: [&str; 5] = ["CLIENT ID", "NAME", "TYPE", "SCOPES", "CREATED"];

pub fn client_row(c: &Client) -> Vec<String> {
    vec![
        c.client_id.clone(),
        c.name.clone(),
        kind(c).to_owned(),
        c.scopes.join(" "),
        output::time(c.create_time.as_ref()),
    ]
}

/// A client, with its new secret if it has one: in JSON as `client_secret`
/// beside the client's fields; for people, with a warning that it is shown
/// this once.
pub fn print_with_secret(format: Format, w: &WithSecret) -> String {
    match format {
        Format::Json => {
            let mut v = client_json(&w.client);
            if !w.secret.is_empty()
                && let Some(map) = v.as_object_mut()
            {
                map.insert("client_secret".into(), Value::from(w.secret.clone()));
            }
            v.to_string()
        }
        Format::Text if w.secret.is_empty() => client_text(&w.client),
        Format::Text => format!(
            "{}\nclient secret {}\n\nwarning: this is the only time the secret is shown; store it now (the suite keeps only its hash)",
            client_text(&w.client),
            w.secret
        ),
    }
}

pub fn print_client(format: Format, c: &Client) -> String {
    match format {
        Format::Json => client_json(c).to_string(),
        Format::Text => client_text(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_masks_name_only_the_fields_given() {
        let fields = ClientFields {
            name: Some("App".into()),
            scopes: vec!["openid".into(), "user:read".into()],
            first_party: Some(false),
            access_token_ttl: Some(300),
            ..ClientFields::default()
        };
        let (client, paths) = fields.client("c1".into());
        assert_eq!(paths, ["name", "scopes", "first_party", "access_token_ttl"]);
        assert_eq!(client.client_id, "c1");
        assert_eq!(client.access_token_ttl.map(|d| d.seconds), Some(300));
        assert!(ClientFields::default().client("c1".into()).1.is_empty());
    }

    #[test]
    fn the_secret_is_printed_once_with_a_warning_or_as_a_json_field() {
        let w = WithSecret {
            client: Client {
                client_id: "c1".into(),
                name: "App".into(),
                r#type: ClientType::Confidential as i32,
                ..Client::default()
            },
            secret: "s3cret".into(),
        };
        let json: Value = serde_json::from_str(&print_with_secret(Format::Json, &w)).expect("json");
        assert_eq!(json["client_id"], "c1");
        assert_eq!(json["client_secret"], "s3cret");
        assert_eq!(json["type"], "confidential");
        let text = print_with_secret(Format::Text, &w);
        assert!(
            text.contains("s3cret") && text.contains("only time"),
            "{text}"
        );
        // Read back later, no secret field at all.
        let json: Value =
            serde_json::from_str(&print_client(Format::Json, &w.client)).expect("json");
        assert!(json.get("client_secret").is_none());
    }
}

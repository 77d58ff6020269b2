//! ClientService (the operator's registrations) and ConsentService (a
//! user's consents) over the provider's core.

use super::OAuthApi;
use crate::{
    error::Error,
    oauth::{
        clients::ClientInput,
        store::{ClientRecord, ClientSettings},
    },
};
use std::time::Duration;
use suite_proto::{
    auth::{
        self as pb, Client, ClientType, Consent, client_service_server::ClientService,
        consent_service_server::ConsentService,
    },
    time::to_timestamp,
};
use tonic::{Request, Response, Status};

pub(super) fn client_input(c: Client) -> Result<ClientInput, Error> {
    let confidential = match ClientType::try_from(c.r#type) {
        Ok(ClientType::Public) => Some(false),
        Ok(ClientType::Confidential) => Some(true),
        _ => None,
    };
    let access_token_ttl = match c.access_token_ttl {
        None => None,
        Some(d) => Some(Duration::try_from(d).map_err(|_| {
            Error::invalid("client.access_token_ttl", "must be a positive duration")
        })?),
    };
    Ok(ClientInput {
        name: c.name,
        confidential,
        access_token_ttl,
        settings: ClientSettings {
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            grant_types: c.grant_types,
            scopes: c.scopes,
            first_party: c.first_party,
            backchannel_logout_uri: c.backchannel_logout_uri,
            id_token_alg: c.id_token_signed_response_alg,
            access_token_ttl_secs: None,
        },
    })
}

/// A client as the API shows it (never its secret or hashes).
pub fn client_proto(r: &ClientRecord) -> Client {
    let s = &r.settings;
    Client {
        client_id: r.client_id.clone(),
        name: r.name.clone(),
        r#type: if r.confidential {
            ClientType::Confidential
        } else {
            ClientType::Public
        }
        .into(),
        redirect_uris: s.redirect_uris.clone(),
        post_logout_redirect_uris: s.post_logout_redirect_uris.clone(),
        grant_types: s.grant_types.clone(),
        scopes: s.scopes.clone(),
        first_party: s.first_party,
        backchannel_logout_uri: s.backchannel_logout_uri.clone(),
        id_token_signed_response_alg: s.id_token_alg.clone(),
        access_token_ttl: s.access_token_ttl_secs.map(|secs| prost_types::Duration {
            seconds: i64::try_from(secs).unwrap_or(i64::MAX),
            nanos: 0,
        }),
        create_time: Some(to_timestamp(r.created_at)),
        update_time: Some(to_timestamp(r.updated_at)),
        previous_secret_expire_time: r.previous_secret_expires_at.map(to_timestamp),
    }
}

/// The client a Create or Update request must carry.
fn required_client(client: Option<Client>) -> Result<Client, Error> {
    client.ok_or_else(|| Error::invalid("client", "is required"))
}

#[tonic::async_trait]
impl ClientService for OAuthApi {
    async fn create_client(
        &self,
        req: Request<pb::CreateClientRequest>,
    ) -> Result<Response<pb::CreateClientResponse>, Status> {
        self.for_caller(req, |caller, r| async move {
            let input = client_input(required_client(r.client)?)?;
            let (record, secret) = self.core.create_client(&caller, input).await?;
            Ok(pb::CreateClientResponse {
                client: Some(client_proto(&record)),
                client_secret: secret.unwrap_or_default(),
            })
        })
        .await
    }

    async fn get_client(
        &self,
        req: Request<pb::GetClientRequest>,
    ) -> Result<Response<pb::GetClientResponse>, Status> {
        self.for_caller(req, |caller, r| async move {
            let record = self.core.get_client(&caller, &r.client_id).await?;
            Ok(pb::GetClientResponse {
                client: Some(client_proto(&record)),
            })
        })
        .await
    }

    async fn list_clients(
        &self,
        req: Request<pb::ListClientsRequest>,
    ) -> Result<Response<pb::ListClientsResponse>, Status> {
        self.for_caller(req, |caller, r| async move {
            let page = self
                .core
                .list_clients(&caller, r.page_size, &r.page_token)
                .await?;
            Ok(pb::ListClientsResponse {
                clients: page.clients.iter().map(client_proto).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn update_client(
        &self,
        req: Request<pb::UpdateClientRequest>,
    ) -> Result<Response<pb::UpdateClientResponse>, Status> {
        self.for_caller(req, |caller, r| async move {
            let client = required_client(r.client)?;
            let client_id = client.client_id.clone();
            let mask = r.update_mask.map(|m| m.paths).unwrap_or_default();
            let record = self
                .core
                .update_client(&caller, &client_id, client_input(client)?, &mask)
                .await?;
            Ok(pb::UpdateClientResponse {
                client: Some(client_proto(&record)),
            })
        })
        .await
    }

    async fn delete_client(
        &self,
        req: Request<pb::DeleteClientRequest>,
    ) -> Result<Response<pb::DeleteClientResponse>, Status> {
        self.for_caller(req, |caller, r| async move {
            self.core.delete_client(&caller, &r.client_id).await?;
            Ok(pb::DeleteClientResponse {})
        })
        .await
    }

    async fn rotate_client_secret(
        &self,
        req: Request<pb::RotateClientSecretRequest>,
    ) -> Result<Response<pb::RotateClientSecretResponse>, Status> {
        self.for_caller(req, |caller, r| async move {
            let ttl =
                match r.previous_secret_ttl {
                    None => None,
                    Some(d) => Some(Duration::try_from(d).map_err(|_| {
                        Error::invalid("previous_secret_ttl", "must not be negative")
                    })?),
                };
            let (record, secret) = self.core.rotate_secret(&caller, &r.client_id, ttl).await?;
            Ok(pb::RotateClientSecretResponse {
                client: Some(client_proto(&record)),
                client_secret: secret,
            })
        })
        .await
    }
}

#[tonic::async_trait]
impl ConsentService for OAuthApi {
    async fn list_consents(
        &self,
        req: Request<pb::ListConsentsRequest>,
    ) -> Result<Response<pb::ListConsentsResponse>, Status> {
        self.for_caller(req, |caller, r| async move {
            let (consents, next_page_token) = self
                .core
                .list_consents(&caller, r.page_size, &r.page_token, &r.user_id)
                .await?;
            Ok(pb::ListConsentsResponse {
                consents: consents
                    .into_iter()
                    .map(|v| Consent {
                        client_id: v.consent.client_id,
                        client_name: v.client_name,
                        scopes: v.consent.scopes,
                        create_time: Some(to_timestamp(v.consent.created_at)),
                        update_time: Some(to_timestamp(v.consent.updated_at)),
                    })
                    .collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn revoke_consent(
        &self,
        req: Request<pb::RevokeConsentRequest>,
    ) -> Result<Response<pb::RevokeConsentResponse>, Status> {
        self.for_caller(req, |caller, r| async move {
            self.core
                .revoke_consent(&caller, &r.client_id, &r.user_id)
                .await?;
            Ok(pb::RevokeConsentResponse {})
        })
        .await
    }
}

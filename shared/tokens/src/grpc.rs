//! The verifier on gRPC: a call's `authorization` metadata to a caller,
//! token errors to Unauthenticated (expired or invalid, no more).

use crate::{
    claims::TokenError,
    verifier::{Caller, Lasting, Refusal, Verifier, bearer_token},
};
use suite_proto::access::method_access;
use tonic::{Status, metadata::MetadataMap};

/// The one mapping of token errors to the wire.
pub fn token_status(e: &TokenError) -> Status {
    match e {
        TokenError::Expired => Status::unauthenticated("access token expired"),
        TokenError::Revoked => Status::unauthenticated("access token revoked"),
        TokenError::Invalid(_) | TokenError::Rejected(_) => {
            Status::unauthenticated("invalid access token")
        }
        TokenError::Unavailable(_) => {
            Status::unavailable("cannot check the personal access token now; try again")
        }
    }
}

/// The caller of a call: `None` without an `authorization` entry, an
/// Unauthenticated status if one is there but not a valid bearer token.
pub async fn caller(verifier: &Verifier, metadata: &MetadataMap) -> Result<Option<Caller>, Status> {
    match bearer(metadata)? {
        None => Ok(None),
        Some(token) => verified(verifier, token)
            .await
            .map(|(caller, _)| Some(caller)),
    }
}

/// The bearer token of a call's `authorization` entry, if it has one.
fn bearer(metadata: &MetadataMap) -> Result<Option<&str>, Status> {
    let Some(value) = metadata.get("authorization") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(bearer_token)
        .map(Some)
        .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <access token>`"))
}

/// The caller `token` names and its `exp`, or the status that refuses it.
async fn verified(verifier: &Verifier, token: &str) -> Result<(Caller, i64), Status> {
    verifier.caller_until(token).await.map_err(|e| {
        tracing::debug!(error = %e, "token refused");
        token_status(&e)
    })
}

/// Like [`caller`], but a missing token is Unauthenticated too.
pub async fn require_caller(verifier: &Verifier, metadata: &MetadataMap) -> Result<Caller, Status> {
    caller(verifier, metadata)
        .await?
        .ok_or_else(|| Status::unauthenticated("this call needs a bearer access token"))
}

/// The caller of a call that lasts (a stream), with what ends its token.
pub async fn require_lasting(
    verifier: &Verifier,
    metadata: &MetadataMap,
) -> Result<Lasting, Status> {
    let token = bearer(metadata)?
        .ok_or_else(|| Status::unauthenticated("this call needs a bearer access token"))?;
    verifier.lasting(token).await.map_err(|e| {
        tracing::debug!(error = %e, "token refused");
        token_status(&e)
    })
}

/// The one mapping of scope refusals to the wire: the token is good, what
/// it was granted too small.
pub fn refusal_status(refusal: &Refusal) -> Status {
    Status::permission_denied(refusal.to_string())
}

/// Refuses `caller` (PermissionDenied) unless its token allows the method
/// at `path` (`/{service}/{method}`), by the contract's table.
pub fn allow(caller: &Caller, path: &str) -> Result<(), Status> {
    caller
        .may_call(method_access(path))
        .map_err(|r| refusal_status(&r))
}

/// Like [`require_caller`], and the token must allow the method at `path`.
pub async fn require_caller_for(
    verifier: &Verifier,
    metadata: &MetadataMap,
    path: &str,
) -> Result<Caller, Status> {
    let caller = require_caller(verifier, metadata).await?;
    allow(&caller, path)?;
    Ok(caller)
}

/// Personal access tokens exchanged at the auth service's
/// `ExchangePersonalAccessToken` over gRPC.
#[derive(Clone)]
pub struct GrpcExchange {
    client: suite_proto::auth::token_service_client::TokenServiceClient<tonic::transport::Channel>,
}

impl GrpcExchange {
    /// Exchanges over `channel` (to the auth service).
    pub fn new(channel: tonic::transport::Channel) -> Self {
        Self {
            client: suite_proto::auth::token_service_client::TokenServiceClient::new(channel),
        }
    }

    /// Exchanges at the auth service whose `GetJwks` serves `source`'s
    /// keys (`JWKS=grpc://…`): where the keys come from, the tokens are
    /// exchanged. `None` for other sources: personal access tokens are then
    /// refused.
    pub fn of_jwks(source: Option<&crate::jwks::JwksSource>) -> Option<Self> {
        match source {
            Some(crate::jwks::JwksSource::Grpc(endpoint)) => {
                Some(Self::new(endpoint.as_ref().clone().connect_lazy()))
            }
            _ => None,
        }
    }
}

impl crate::verifier::Exchange for GrpcExchange {
    fn exchange<'a>(
        &'a self,
        token: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<String, TokenError>> + Send + 'a>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let request = suite_proto::auth::ExchangePersonalAccessTokenRequest {
                token: token.to_owned(),
            };
            match client.exchange_personal_access_token(request).await {
                Ok(answer) => Ok(answer.into_inner().access_token),
                Err(status) => Err(exchange_error(&status)),
            }
        })
    }
}

/// The token error an exchange's refusal stands for: the auth service's
/// Unauthenticated answers say which; anything else is an outage.
pub fn exchange_error(status: &Status) -> TokenError {
    match status.code() {
        tonic::Code::Unauthenticated if status.message().contains("expired") => TokenError::Expired,
        tonic::Code::Unauthenticated if status.message().contains("revoked") => TokenError::Revoked,
        tonic::Code::Unauthenticated | tonic::Code::InvalidArgument => {
            TokenError::Invalid("unknown personal access token")
        }
        _ => TokenError::Unavailable(status.message().to_owned()),
    }
}

//! Personal access tokens exchanged at the auth service (its
//! `ExchangePersonalAccessToken`), on the gateway's traced, balanced channel
//! to it: the verifier calls this once per token every few minutes and
//! forwards the access token it gets in the token's place.

use std::{future::Future, pin::Pin, time::Duration};
use suite_grpc::balance::Balanced;
use suite_proto::auth::{
    ExchangePersonalAccessTokenRequest, token_service_client::TokenServiceClient,
};
use suite_telemetry::grpc_client::TraceClientLayer;
use suite_tokens::{Exchange, TokenError, grpc::exchange_error};

pub struct AuthExchange {
    pub channel: Balanced,
    pub trace: TraceClientLayer,
    /// The longest an exchange may take (the request budget).
    pub timeout: Duration,
}

impl Exchange for AuthExchange {
    fn exchange<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, TokenError>> + Send + 'a>> {
        Box::pin(async move {
            let mut client = TokenServiceClient::new(self.trace.wrap(self.channel.channel()));
            let mut request = tonic::Request::new(ExchangePersonalAccessTokenRequest {
                token: token.to_owned(),
            });
            request.set_timeout(self.timeout);
            match client.exchange_personal_access_token(request).await {
                Ok(answer) => Ok(answer.into_inner().access_token),
                Err(status) => {
                    if status.code() == tonic::Code::Unavailable {
                        self.channel.recheck();
                    }
                    Err(exchange_error(&status))
                }
            }
        })
    }
}

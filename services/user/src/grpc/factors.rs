//! The second factors' RPCs: each parses its request, calls the core and
//! builds its response (the trait's methods in `grpc` only name them).

use super::{UserApi, whole_seconds};
use crate::{
    core::{
        credentials::SignInClient,
        factors::{FactorCheck, PasskeyAssertion},
        passkeys::PasskeySignIn,
    },
    domain::UserRef,
    error::Error,
    store::factors::FactorRecord,
};
use suite_grpc::server;
use suite_proto::{
    time::to_timestamp,
    user::{
        ConfirmTotpRequest, ConfirmTotpResponse, DeleteFactorRequest, DeleteFactorResponse,
        EnrollTotpRequest, EnrollTotpResponse, Factor, FinishPasskeyRegistrationRequest,
        FinishPasskeyRegistrationResponse, ListFactorsRequest, ListFactorsResponse,
        RegenerateRecoveryCodesRequest, RegenerateRecoveryCodesResponse, RenameFactorRequest,
        RenameFactorResponse, ResetFactorsRequest, ResetFactorsResponse,
        StartPasskeyAuthenticationRequest, StartPasskeyAuthenticationResponse,
        StartPasskeyRegistrationRequest, StartPasskeyRegistrationResponse, VerifyPasskeyRequest,
        VerifyPasskeyResponse, VerifySecondFactorRequest, VerifySecondFactorResponse,
        verify_second_factor_response::Outcome,
    },
};
use tonic::{Request, Response, Status};

/// What a factor shows: never its secret.
fn factor(f: &FactorRecord) -> Factor {
    Factor {
        id: f.id.to_string(),
        kind: f.kind.clone(),
        name: f.name.clone(),
        confirmed: f.confirmed_at.is_some(),
        create_time: Some(to_timestamp(f.created_at)),
        last_use_time: f.last_used_at.map(to_timestamp),
    }
}

impl UserApi {
    pub(super) async fn list_factors_call(
        &self,
        req: Request<ListFactorsRequest>,
    ) -> Result<Response<ListFactorsResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "ListFactors").await?;
                let target = UserRef::parse(&req.get_ref().user_id, "user_id")?;
                let (factors, left) = self.core.list_factors(&caller, target).await?;
                Ok::<_, Error>(ListFactorsResponse {
                    factors: factors.iter().map(factor).collect(),
                    recovery_codes_left: i32::try_from(left).unwrap_or(i32::MAX),
                })
            }
            .await,
        )
    }

    pub(super) async fn enroll_totp_call(
        &self,
        req: Request<EnrollTotpRequest>,
    ) -> Result<Response<EnrollTotpResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "EnrollTotp").await?;
                let r = req.get_ref();
                let target = UserRef::parse(&r.user_id, "user_id")?;
                let begun = self.core.enroll_totp(&caller, target, &r.name).await?;
                Ok::<_, Error>(EnrollTotpResponse {
                    factor: Some(factor(&begun.factor)),
                    secret: begun.enrolment.secret_base32,
                    otpauth_uri: begun.enrolment.uri,
                    qr_svg: begun.enrolment.qr_svg,
                })
            }
            .await,
        )
    }

    pub(super) async fn confirm_totp_call(
        &self,
        req: Request<ConfirmTotpRequest>,
    ) -> Result<Response<ConfirmTotpResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "ConfirmTotp").await?;
                let address = self.forwarded.client_of(&req);
                let r = req.get_ref();
                let target = UserRef::parse(&r.user_id, "user_id")?;
                let (confirmed, codes) = self
                    .core
                    .confirm_totp(&caller, target, &r.factor_id, &r.code, &address)
                    .await?;
                Ok::<_, Error>(ConfirmTotpResponse {
                    factor: Some(factor(&confirmed)),
                    recovery_codes: codes,
                })
            }
            .await,
        )
    }

    pub(super) async fn delete_factor_call(
        &self,
        req: Request<DeleteFactorRequest>,
    ) -> Result<Response<DeleteFactorResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "DeleteFactor").await?;
                let r = req.get_ref();
                let target = UserRef::parse(&r.user_id, "user_id")?;
                self.core
                    .delete_factor(&caller, target, &r.factor_id)
                    .await?;
                Ok::<_, Error>(DeleteFactorResponse {})
            }
            .await,
        )
    }

    pub(super) async fn regenerate_recovery_codes_call(
        &self,
        req: Request<RegenerateRecoveryCodesRequest>,
    ) -> Result<Response<RegenerateRecoveryCodesResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "RegenerateRecoveryCodes").await?;
                let target = UserRef::parse(&req.get_ref().user_id, "user_id")?;
                let recovery_codes = self.core.regenerate_recovery_codes(&caller, target).await?;
                Ok::<_, Error>(RegenerateRecoveryCodesResponse { recovery_codes })
            }
            .await,
        )
    }

    pub(super) async fn reset_factors_call(
        &self,
        req: Request<ResetFactorsRequest>,
    ) -> Result<Response<ResetFactorsResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "ResetFactors").await?;
                let target = UserRef::parse(&req.get_ref().user_id, "user_id")?;
                let removed = self.core.reset_factors(&caller, target).await?;
                Ok::<_, Error>(ResetFactorsResponse {
                    removed: i32::try_from(removed).unwrap_or(i32::MAX),
                })
            }
            .await,
        )
    }

    pub(super) async fn verify_second_factor_call(
        &self,
        req: Request<VerifySecondFactorRequest>,
    ) -> Result<Response<VerifySecondFactorResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "VerifySecondFactor").await?;
                let r = req.get_ref();
                let check = self
                    .core
                    .verify_second_factor(
                        &caller,
                        &r.user_id,
                        &r.code,
                        Some(PasskeyAssertion {
                            ceremony: &r.ceremony,
                            binding: &r.binding,
                            assertion_json: &r.assertion_json,
                        }),
                        &r.client_address,
                    )
                    .await?;
                Ok::<_, Error>(match check {
                    FactorCheck::Valid(method) => VerifySecondFactorResponse {
                        outcome: Outcome::Valid.into(),
                        method: method.to_owned(),
                        retry_after: None,
                    },
                    FactorCheck::Invalid => VerifySecondFactorResponse {
                        outcome: Outcome::Invalid.into(),
                        ..Default::default()
                    },
                    FactorCheck::Locked(wait) => VerifySecondFactorResponse {
                        outcome: Outcome::Locked.into(),
                        retry_after: Some(whole_seconds(wait)),
                        ..Default::default()
                    },
                })
            }
            .await,
        )
    }

    pub(super) async fn start_passkey_registration_call(
        &self,
        req: Request<StartPasskeyRegistrationRequest>,
    ) -> Result<Response<StartPasskeyRegistrationResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "StartPasskeyRegistration").await?;
                let r = req.get_ref();
                let target = UserRef::parse(&r.user_id, "user_id")?;
                let (ceremony, options_json) = self
                    .core
                    .start_passkey_registration(&caller, target, &r.name)
                    .await?;
                Ok::<_, Error>(StartPasskeyRegistrationResponse {
                    ceremony,
                    options_json,
                })
            }
            .await,
        )
    }

    pub(super) async fn finish_passkey_registration_call(
        &self,
        req: Request<FinishPasskeyRegistrationRequest>,
    ) -> Result<Response<FinishPasskeyRegistrationResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "FinishPasskeyRegistration").await?;
                let r = req.get_ref();
                let target = UserRef::parse(&r.user_id, "user_id")?;
                let (added, codes) = self
                    .core
                    .finish_passkey_registration(&caller, target, &r.ceremony, &r.credential_json)
                    .await?;
                Ok::<_, Error>(FinishPasskeyRegistrationResponse {
                    factor: Some(factor(&added)),
                    recovery_codes: codes,
                })
            }
            .await,
        )
    }

    pub(super) async fn rename_factor_call(
        &self,
        req: Request<RenameFactorRequest>,
    ) -> Result<Response<RenameFactorResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "RenameFactor").await?;
                let r = req.get_ref();
                let target = UserRef::parse(&r.user_id, "user_id")?;
                let renamed = self
                    .core
                    .rename_factor(&caller, target, &r.factor_id, &r.name)
                    .await?;
                Ok::<_, Error>(RenameFactorResponse {
                    factor: Some(factor(&renamed)),
                })
            }
            .await,
        )
    }

    pub(super) async fn start_passkey_authentication_call(
        &self,
        req: Request<StartPasskeyAuthenticationRequest>,
    ) -> Result<Response<StartPasskeyAuthenticationResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "StartPasskeyAuthentication").await?;
                let r = req.get_ref();
                let (ceremony, options_json) = self
                    .core
                    .start_passkey_authentication(&caller, &r.user_id, &r.binding)
                    .await?;
                Ok::<_, Error>(StartPasskeyAuthenticationResponse {
                    ceremony,
                    options_json,
                })
            }
            .await,
        )
    }

    pub(super) async fn verify_passkey_call(
        &self,
        req: Request<VerifyPasskeyRequest>,
    ) -> Result<Response<VerifyPasskeyResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "VerifyPasskey").await?;
                let r = req.get_ref();
                let client = SignInClient {
                    address: r.client_address.clone(),
                    user_agent: String::new(),
                };
                let found = self
                    .core
                    .verify_passkey(&caller, &r.ceremony, &r.binding, &r.assertion_json, &client)
                    .await?;
                Ok::<_, Error>(match found {
                    PasskeySignIn::Valid(status, method) => VerifyPasskeyResponse {
                        outcome: Outcome::Valid.into(),
                        user_id: status.id.to_string(),
                        username: status.username,
                        roles: status.roles,
                        sessions_valid_after: status.sessions_valid_after.map(to_timestamp),
                        method: method.to_owned(),
                        email_unverified: false,
                    },
                    // A sign-in waiting for a verified address is no
                    // sign-in (a link was mailed), and says why.
                    PasskeySignIn::EmailUnverified => VerifyPasskeyResponse {
                        outcome: Outcome::Invalid.into(),
                        email_unverified: true,
                        ..Default::default()
                    },
                    PasskeySignIn::Invalid => VerifyPasskeyResponse {
                        outcome: Outcome::Invalid.into(),
                        ..Default::default()
                    },
                })
            }
            .await,
        )
    }
}

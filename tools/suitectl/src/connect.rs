//! Where the services are and who suitectl is to them: a service token
//! signed with the operator's key, or an admin's login.

use super::error::{CtlError, describe};
use secrecy::{ExposeSecret, SecretString};
use std::{path::PathBuf, time::Duration};
use suite_proto::{
    auth::{
        CompleteLoginRequest, LoginRequest, LogoutRequest, auth_service_client::AuthServiceClient,
        client_service_client::ClientServiceClient, token_service_client::TokenServiceClient,
    },
    user::user_service_client::UserServiceClient,
};
use suite_tokens::{Claims, SigningKey};
use tonic::{Request, metadata::MetadataValue, transport::Channel};

/// The `sub` of suitectl's service tokens (it shows in the services' logs).
const SUBJECT: &str = suite_tokens::roles::OPERATOR_SUBJECT;
/// How long a minted token lives: long enough for a big import.
const TOKEN_TTL_SECS: i64 = 900;

#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// The user service's gRPC URL.
    #[arg(
        long,
        env = "USER_SERVICE_URL",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub user_service_url: String,
    /// The auth service's gRPC URL.
    #[arg(
        long,
        env = "AUTH_SERVICE_URL",
        default_value = "http://127.0.0.1:50052",
        global = true
    )]
    pub auth_service_url: String,
    /// Seconds each call may take.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub timeout_secs: u64,
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

/// Who suitectl is: an admin logging in (`--login`), or else the holder of
/// the auth service's signing key.
#[derive(Debug, Clone, clap::Args)]
pub struct CredentialArgs {
    /// Log in as this admin (username or email); the password comes from
    /// SUITECTL_PASSWORD or a prompt (and, for an admin with a second
    /// factor, its code from SUITECTL_CODE or a prompt). Without it,
    /// suitectl signs its own service token with the signing key.
    #[arg(long, env = "SUITECTL_LOGIN", global = true)]
    pub login: Option<String>,
    /// The auth service's signing key (PKCS#8 PEM), as the launcher keeps it.
    #[arg(
        long,
        env = "SIGNING_KEY_FILE",
        default_value = "data/auth-signing-key.pem",
        global = true
    )]
    pub signing_key_file: PathBuf,
    /// The `iss` the services require (as the auth service signs it).
    #[arg(long, env = "JWT_ISSUER", default_value = "suite-auth", global = true)]
    pub issuer: String,
    /// The `aud` of the minted token: one both services accept (the auth
    /// service's ACCESS_TOKEN_AUDIENCE; the user service accepts it too).
    #[arg(
        long,
        env = "ACCESS_TOKEN_AUDIENCE",
        default_value = "suite",
        global = true
    )]
    pub audience: String,
}

/// A lazily connecting channel to `url`.
pub fn channel(url: &str, timeout: Duration) -> Result<Channel, CtlError> {
    let endpoint = Channel::from_shared(url.to_owned())
        .map_err(|e| CtlError::Usage(format!("{url:?} is not a URL: {e}")))?
        .connect_timeout(Duration::from_secs(3))
        .timeout(timeout);
    Ok(endpoint.connect_lazy())
}

/// Clients of both services, with the bearer token every call carries.
pub struct Conn {
    pub user: UserServiceClient<Channel>,
    pub auth: AuthServiceClient<Channel>,
    /// The auth service's OAuth clients, on the same channel.
    pub clients: ClientServiceClient<Channel>,
    /// The auth service's personal access tokens, on the same channel.
    pub tokens: TokenServiceClient<Channel>,
    token: String,
    /// An admin's login session, ended when suitectl is done.
    refresh_token: Option<String>,
}

impl Conn {
    pub async fn open(args: &ConnectArgs) -> Result<Self, CtlError> {
        let timeout = Duration::from_secs(args.timeout_secs);
        // Imports send large batches: the services' own limits apply.
        let user = UserServiceClient::new(channel(&args.user_service_url, timeout)?)
            .max_decoding_message_size(16 << 20);
        let auth_channel = channel(&args.auth_service_url, timeout)?;
        let clients = ClientServiceClient::new(auth_channel.clone());
        let tokens = TokenServiceClient::new(auth_channel.clone());
        let mut auth = AuthServiceClient::new(auth_channel);
        let c = &args.credentials;
        let (token, refresh_token) = match &c.login {
            Some(login) => {
                let password = password()?;
                let reply = auth
                    .login(LoginRequest {
                        login: login.clone(),
                        password: password.expose_secret().to_owned(),
                        user_agent: format!("suitectl/{}", env!("CARGO_PKG_VERSION")),
                    })
                    .await
                    .map_err(|s| CtlError::from_status("login", &s))?
                    .into_inner();
                match reply.second_factor {
                    // An admin with a second factor: its code completes the login.
                    Some(second) => {
                        let code = second_factor_code()?;
                        let done = auth
                            .complete_login(CompleteLoginRequest {
                                challenge: second.challenge,
                                code: code.expose_secret().trim().to_owned(),
                                passkey_assertion_json: String::new(),
                            })
                            .await
                            .map_err(|s| CtlError::from_status("login (second factor)", &s))?
                            .into_inner();
                        (done.access_token, Some(done.refresh_token))
                    }
                    None => (reply.access_token, Some(reply.refresh_token)),
                }
            }
            None => (mint(c)?, None),
        };
        Ok(Self {
            user,
            auth,
            clients,
            tokens,
            token,
            refresh_token,
        })
    }

    /// `message` as a request carrying the token.
    pub fn req<T>(&self, message: T) -> Result<Request<T>, CtlError> {
        let mut req = Request::new(message);
        let value = MetadataValue::try_from(format!("Bearer {}", self.token))
            .map_err(|e| CtlError::Failed(format!("the token cannot be sent: {e}")))?;
        req.metadata_mut().insert("authorization", value);
        Ok(req)
    }

    /// Ends an admin's login session (a service token just expires).
    pub async fn close(mut self) {
        if let Some(refresh_token) = self.refresh_token.take()
            && let Err(s) = self.auth.logout(LogoutRequest { refresh_token }).await
        {
            eprintln!("suitectl: warning: logout failed: {}", describe(&s));
        }
    }
}

/// The admin's password: SUITECTL_PASSWORD, else asked on the terminal.
fn password() -> Result<SecretString, CtlError> {
    if let Ok(p) = std::env::var("SUITECTL_PASSWORD") {
        return Ok(p.into());
    }
    rpassword::prompt_password("Password: ")
        .map(SecretString::from)
        .map_err(|e| {
            CtlError::Usage(format!(
                "no password: set SUITECTL_PASSWORD or run on a terminal ({e})"
            ))
        })
}

/// The code of the admin's second factor: SUITECTL_CODE, else asked on the
/// terminal.
fn second_factor_code() -> Result<SecretString, CtlError> {
    if let Ok(c) = std::env::var("SUITECTL_CODE") {
        return Ok(c.into());
    }
    rpassword::prompt_password("Code from your authenticator app, or a recovery code: ")
        .map(SecretString::from)
        .map_err(|e| {
            CtlError::Usage(format!(
                "the login asks for a second factor: set SUITECTL_CODE or run on a terminal ({e})"
            ))
        })
}

/// A short-lived service token signed with the operator's key, exactly as
/// the auth service signs its own (`roles: [service]`).
fn mint(c: &CredentialArgs) -> Result<String, CtlError> {
    let path = &c.signing_key_file;
    let pem = std::fs::read_to_string(path).map_err(|e| {
        CtlError::Unreachable(format!(
            "cannot read the signing key {} ({e}); give --signing-key-file or SIGNING_KEY_FILE, or log in with --login",
            path.display()
        ))
    })?;
    let key = SigningKey::from_pkcs8_pem_thumbprinted(&pem).map_err(|e| {
        CtlError::Unreachable(format!(
            "{} is not an Ed25519 PKCS#8 PEM key: {e}",
            path.display()
        ))
    })?;
    let now = chrono::Utc::now().timestamp();
    let claims = Claims::service(&c.issuer, &c.audience, SUBJECT, now, TOKEN_TTL_SECS);
    key.sign(&claims)
        .map_err(|e| CtlError::Failed(format!("signing the service token: {e}")))
}

//! The user service's rules: who may do what, validation, and the store and
//! hasher calls behind each RPC. Speaks the protobuf messages; knows nothing
//! of transport (the gRPC adapter maps its errors once).

use crate::{
    cache::UserCache,
    coalesce::{Coalescer, Role},
    domain::{NewUser, Password, UserChanges, Violations},
    error::Error,
    import,
    password::{PasswordHasher, Verified},
    store::{UserRecord, UserStore},
    throttle::{Account, Throttle},
};
use chrono::{DateTime, SubsecRound, Utc};
use std::sync::Arc;
use suite_events::{Event, outbox::Wake};
use suite_grpc::paging::Paging;
use suite_proto::user::{
    ChangePasswordRequest, GetUserStatusResponse, ImportUsersRequest, ImportUsersResponse,
    ListUsersRequest, ListUsersResponse, PasswordChanged, RolesChanged, UpdateUserRequest, User,
    UserCreated, UserDeleted, UserUpdated, VerifyCredentialsRequest, VerifyCredentialsResponse,
    verify_credentials_response::Outcome,
};
use suite_tokens::Caller;
use uuid::Uuid;

/// Fields an UpdateUser mask may name.
const MUTABLE_FIELDS: &[&str] = &["username", "email", "display_name", "roles"];
/// Fields that exist but can never be changed.
const IMMUTABLE_FIELDS: &[&str] = &["id", "create_time", "update_time", "etag"];

pub struct UserCore {
    store: Arc<dyn UserStore>,
    hasher: PasswordHasher,
    throttle: Throttle,
    /// The outbox relay, woken after each change so its event goes at once.
    events: Wake,
    /// Whether changes write their events (see `EventsArgs::record`).
    record: bool,
    /// The user record cache (with `REDIS_URL`).
    cache: Arc<UserCache>,
    /// Identical credential checks in flight share one.
    same_checks: Coalescer<VerifyCredentialsResponse>,
}

impl UserCore {
    pub fn new(
        store: Arc<dyn UserStore>,
        hasher: PasswordHasher,
        throttle: Throttle,
        events: Wake,
        record: bool,
        cache: Arc<UserCache>,
    ) -> Self {
        Self {
            store,
            hasher,
            throttle,
            events,
            record,
            cache,
            same_checks: Coalescer::new(crate::password::random_key()),
        }
    }

    /// `events`, unless recording is off (a benchmark's baseline).
    fn recorded(&self, events: Vec<Event>) -> Vec<Event> {
        if self.record { events } else { Vec::new() }
    }

    /// Deletes password-failure counters that can never matter again.
    pub async fn prune(&self) -> Result<u64, Error> {
        self.throttle.prune().await
    }

    /// Registration: open to anyone; only an admin may choose roles.
    pub async fn create(&self, caller: Option<&Caller>, new: NewUser) -> Result<User, Error> {
        let NewUser {
            username,
            email,
            password,
            display_name,
            roles,
        } = new;
        let wants_more_than_user = roles.iter().any(|r| r != "user");
        if wants_more_than_user && !caller.is_some_and(Caller::is_operator) {
            return Err(Error::PermissionDenied("only an admin may set roles"));
        }

        let related = related_inputs(username.as_str(), email.as_str(), display_name.as_str());
        let password_hash = self
            .hasher
            .hash_new(password.into_inner(), related, "password")
            .await?;
        let now = now();
        let record = UserRecord {
            id: Uuid::now_v7(),
            username,
            email,
            display_name,
            roles,
            password_hash,
            created_at: now,
            updated_at: now,
            version: 1,
            sessions_valid_after: None,
        };
        let user = view(&record, true);
        let created = Event::new(
            &UserCreated {
                user: Some(user.clone()),
            },
            record.id,
        );
        self.store
            .insert(&record, &self.recorded(vec![created]))
            .await?;
        self.events.wake();
        tracing::info!(user.id = %record.id, "user created");
        Ok(user)
    }

    pub async fn get(&self, caller: &Caller, id: &str) -> Result<User, Error> {
        let id = resolve_id(caller, id, "id")?;
        authorize(caller, id, Access::Read)?;
        if let Some(user) = self.cache.get(id).await {
            return Ok(user);
        }
        let record = self.store.get(id).await?.ok_or(Error::NotFound)?;
        let user = view(&record, true);
        self.cache.put(id, &user).await;
        Ok(user)
    }

    pub async fn list(
        &self,
        caller: &Caller,
        req: ListUsersRequest,
    ) -> Result<ListUsersResponse, Error> {
        let page = USERS_PAGING.page(req.page_size, &req.page_token)?;
        let (mut rows, total) = tokio::try_join!(
            self.store.list(page.after, page.fetch()),
            self.store.count()
        )?;
        let next_page_token = USERS_PAGING.finish(page, &mut rows, |r| r.id);
        let privileged = caller.is_admin() || caller.is_service();
        let me = caller.user_id();
        Ok(ListUsersResponse {
            users: rows
                .iter()
                .map(|r| view(r, privileged || me == Some(r.id)))
                .collect(),
            next_page_token,
            total_size: i32::try_from(total).unwrap_or(i32::MAX),
        })
    }

    pub async fn update(&self, caller: &Caller, req: UpdateUserRequest) -> Result<User, Error> {
        let user = req
            .user
            .ok_or_else(|| Error::invalid("user", "is required"))?;
        let id = resolve_id(caller, &user.id, "user.id")?;
        authorize(caller, id, Access::Write)?;

        let paths = update_paths(&user, req.update_mask.map(|m| m.paths))?;
        let changes = UserChanges::parse(&user, &paths)?;
        if changes.roles.is_some() && !caller.is_operator() {
            return Err(Error::PermissionDenied("only an admin may change roles"));
        }

        let mut record = self.store.get(id).await?.ok_or(Error::NotFound)?;
        check_etag(&user.etag, &record)?;
        let before = record.clone();
        if let Some(u) = changes.username {
            record.username = u;
        }
        if let Some(e) = changes.email {
            record.email = e;
        }
        if let Some(d) = changes.display_name {
            record.display_name = d;
        }
        if let Some(r) = changes.roles {
            record.roles = r;
        }
        record.updated_at = now();
        let changed = changed_fields(&before, &record);
        let mut after = view(&record, true);
        // The version the save is about to store.
        after.etag = (record.version + 1).to_string();
        let mut events = vec![Event::new(
            &UserUpdated {
                user: Some(after),
                changed_fields: changed.iter().map(|f| (*f).to_owned()).collect(),
            },
            id,
        )];
        if changed.contains(&"roles") {
            // Sessions begun before now end, as the event says, and here
            // too, in the record's own transaction: a refresh that asks
            // after this change is acknowledged is refused at once, not
            // only once the auth service has consumed the event.
            record.sessions_valid_after = Some(record.updated_at);
            events.push(Event::new(
                &RolesChanged {
                    user_id: id.to_string(),
                    roles: record.roles.clone(),
                    previous_roles: before.roles.clone(),
                },
                id,
            ));
        }
        self.save(&mut record, &self.recorded(events)).await?;
        Ok(view(&record, true))
    }

    pub async fn delete(&self, caller: &Caller, id: &str, etag: &str) -> Result<(), Error> {
        let id = resolve_id(caller, id, "id")?;
        authorize(caller, id, Access::Write)?;
        let record = self.store.get(id).await?.ok_or(Error::NotFound)?;
        check_etag(etag, &record)?;
        let deleted = Event::new(
            &UserDeleted {
                user_id: id.to_string(),
            },
            id,
        );
        let deleted = self.recorded(vec![deleted]);
        if !self
            .store
            .delete(id, record.version, now(), &deleted)
            .await?
        {
            return Err(self.lost_race(id).await);
        }
        self.events.wake();
        // Nothing of a deleted user is cached again.
        self.cache.written(id, i64::MAX).await;
        tracing::info!(user.id = %id, "user deleted");
        Ok(())
    }

    /// `client_address`: where the call came from, for the throttle of the
    /// current-password check.
    pub async fn change_password(
        &self,
        caller: &Caller,
        req: ChangePasswordRequest,
        client_address: &str,
    ) -> Result<(), Error> {
        let id = resolve_id(caller, &req.id, "id")?;
        authorize(caller, id, Access::Write)?;
        let acting_on_self = caller.user_id() == Some(id);
        let new_password = match (
            Password::parse(&req.new_password),
            acting_on_self && req.current_password.is_empty(),
        ) {
            (Ok(p), false) => p,
            (p, lacks_current) => {
                let mut v = Violations::default();
                v.note("new_password", &p);
                if lacks_current {
                    v.add("current_password", "is required");
                }
                return Err(v.into_error());
            }
        };

        let mut record = self.store.get(id).await?.ok_or(Error::NotFound)?;
        // An admin resetting someone else's password need not know it. The
        // user's own check is a password guess like a login's (a stolen
        // access token must not make it an unthrottled oracle): counted
        // against the same counters.
        if acting_on_self {
            let reservation = self
                .throttle
                .reserve(Account::User(id), client_address)
                .await?;
            let current = self
                .hasher
                .verify(
                    req.current_password.clone(),
                    Some(record.password_hash.clone()),
                )
                .await?;
            if let Verified::Wrong(failure) = current {
                self.throttle.fail(reservation).await;
                // The account's turn is given back: the floor's wait holds
                // nothing another check of it needs.
                self.hasher.pad(failure).await?;
                return Err(Error::invalid(
                    "current_password",
                    "is not the user's current password",
                ));
            }
            self.throttle.release(reservation).await?;
        }
        let related = related_inputs(
            record.username.as_str(),
            record.email.as_str(),
            record.display_name.as_str(),
        );
        record.password_hash = self
            .hasher
            .hash_new(new_password.into_inner(), related, "new_password")
            .await?;
        let at = now();
        record.updated_at = at;
        // Sessions begun before now end: a changed password logs out other devices.
        record.sessions_valid_after = Some(at);
        let changed = Event::new(
            &PasswordChanged {
                user_id: id.to_string(),
                sessions_valid_after: Some(timestamp(at)),
            },
            id,
        );
        self.save(&mut record, &self.recorded(vec![changed]))
            .await?;
        tracing::info!(user.id = %id, "password changed");
        Ok(())
    }

    pub async fn verify_credentials(
        &self,
        caller: &Caller,
        req: VerifyCredentialsRequest,
    ) -> Result<VerifyCredentialsResponse, Error> {
        if !caller.is_service() {
            return Err(Error::PermissionDenied(
                "only services may verify credentials",
            ));
        }
        let mut v = Violations::default();
        if req.login.trim().is_empty() {
            v.add("login", "is required");
        }
        if req.password.is_empty() {
            v.add("password", "is required");
        }
        v.into_result()?;
        // Longer than any email: refused before anything is stored or hashed.
        if req.login.trim().chars().count() > suite_proto::MAX_LOGIN_CHARS {
            return Err(Error::invalid(
                "login",
                format!(
                    "must be at most {} characters long",
                    suite_proto::MAX_LOGIN_CHARS
                ),
            ));
        }
        // No stored password is this long; refusing it first costs no hashing,
        // whatever the user, so it reveals nothing.
        if Password::parse(&req.password).is_err() {
            return Ok(invalid_credentials());
        }
        let login = suite_proto::canonical_login(&req.login);
        let address = req.client_address.trim();
        let lead = match self
            .same_checks
            .join(&[
                login.as_bytes(),
                address.as_bytes(),
                req.password.as_bytes(),
            ])
            .await
        {
            Role::Shared(answer) => {
                crate::metrics::count_password_check("shared");
                return Ok(answer);
            }
            Role::Lead(lead) => lead,
        };
        let answer = self.check_credentials(&login, address, req.password).await;
        lead.finish(answer.as_ref().ok().cloned());
        answer
    }

    /// The credential check itself: counted by the throttle, then hashed.
    async fn check_credentials(
        &self,
        login: &str,
        address: &str,
        password: String,
    ) -> Result<VerifyCredentialsResponse, Error> {
        let record = self
            .throttle
            .database(self.store.find_by_login(login))
            .await??;
        // Counted per account (its username and email are one), or per login
        // name for nobody's, before the hash: concurrent guesses cannot all
        // slip past the lock.
        let account = match &record {
            Some(r) => Account::User(r.id),
            None => Account::Unknown(login),
        };
        let reservation = match self.throttle.reserve(account, address).await {
            Ok(reservation) => reservation,
            Err(Error::Throttled(wait)) => {
                return Ok(VerifyCredentialsResponse {
                    outcome: Outcome::Locked.into(),
                    retry_after: Some(duration(wait)),
                    ..Default::default()
                });
            }
            Err(e) => return Err(e),
        };
        let stored = record.as_ref().map(|r| r.password_hash.clone());
        match self.hasher.verify(password, stored.clone()).await? {
            Verified::Wrong(failure) => {
                self.throttle.fail(reservation).await;
                // After the turn is given back (so a storm of wrong passwords
                // on one account is not slowed to one floor at a time), and
                // before the answer goes to identical checks in flight.
                self.hasher.pad(failure).await?;
                Ok(invalid_credentials())
            }
            Verified::Right { rehash } => {
                let (Some(record), Some(old)) = (record, stored) else {
                    self.throttle.fail(reservation).await;
                    return Ok(invalid_credentials());
                };
                self.throttle.release(reservation).await?;
                if let Some(new) = rehash {
                    let replaced = self
                        .throttle
                        .database(self.store.replace_hash(record.id, &old, &new))
                        .await;
                    if let Err(e) = replaced.and_then(|r| r.map_err(Error::from)) {
                        tracing::warn!(error = %e, "upgrading a password hash failed; will retry next login");
                    }
                }
                Ok(VerifyCredentialsResponse {
                    user_id: record.id.to_string(),
                    username: record.username.as_str().to_owned(),
                    roles: record.roles,
                    sessions_valid_after: record.sessions_valid_after.map(timestamp),
                    outcome: Outcome::Valid.into(),
                    retry_after: None,
                })
            }
        }
    }

    /// A live user by username or email (any case), for operators.
    pub async fn lookup(&self, caller: &Caller, login: &str) -> Result<User, Error> {
        if !caller.is_operator() {
            return Err(Error::PermissionDenied(
                "only admins and the operator's suitectl may look users up",
            ));
        }
        if login.trim().is_empty() {
            return Err(Error::invalid("login", "is required"));
        }
        if login.trim().chars().count() > suite_proto::MAX_LOGIN_CHARS {
            return Err(Error::invalid(
                "login",
                format!(
                    "must be at most {} characters long",
                    suite_proto::MAX_LOGIN_CHARS
                ),
            ));
        }
        let login = suite_proto::canonical_login(login);
        let record = self
            .store
            .find_by_login(&login)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(view(&record, true))
    }

    /// Imports users with the hashes they had elsewhere (nothing is hashed
    /// here): each valid item created with its event unless a live user has
    /// its username or email; each answered on its own.
    pub async fn import(
        &self,
        caller: &Caller,
        req: ImportUsersRequest,
    ) -> Result<ImportUsersResponse, Error> {
        if !caller.is_operator() {
            return Err(Error::PermissionDenied(
                "only admins and the operator's suitectl may import users",
            ));
        }
        if req.users.len() > import::MAX_BATCH {
            return Err(Error::invalid(
                "users",
                format!("at most {} users per call", import::MAX_BATCH),
            ));
        }
        let now = now();
        let mut results = Vec::with_capacity(req.users.len());
        let mut records = Vec::new();
        // For each valid record, its place in `results`.
        let mut places = Vec::new();
        for (i, u) in req.users.iter().enumerate() {
            match import::parse(u, now) {
                Ok(record) => {
                    results.push(import::skipped());
                    records.push(record);
                    places.push(i);
                }
                Err(reason) => results.push(import::failed(reason)),
            }
        }
        if records.is_empty() {
            return Ok(ImportUsersResponse { results });
        }
        let events: Vec<Event> = records
            .iter()
            .map(|r| {
                Event::new(
                    &UserCreated {
                        user: Some(view(r, true)),
                    },
                    r.id,
                )
            })
            .collect();
        let created: std::collections::HashSet<Uuid> = self
            .store
            .import(&records, &self.recorded(events))
            .await?
            .into_iter()
            .collect();
        for (record, place) in records.iter().zip(places) {
            if created.contains(&record.id)
                && let Some(slot) = results.get_mut(place)
            {
                *slot = import::created(record.id);
            }
        }
        if !created.is_empty() {
            self.events.wake();
        }
        tracing::info!(
            created = created.len(),
            requested = req.users.len(),
            "users imported"
        );
        Ok(ImportUsersResponse { results })
    }

    /// A user's roles and session cut-off, for the auth service's refresh.
    pub async fn status(
        &self,
        caller: &Caller,
        user_id: &str,
    ) -> Result<GetUserStatusResponse, Error> {
        if !caller.is_service() {
            return Err(Error::PermissionDenied(
                "only services may read user status",
            ));
        }
        let id = Uuid::parse_str(user_id)
            .map_err(|_| Error::invalid("user_id", "must be a user id (a UUID)"))?;
        let record = self.store.get(id).await?.ok_or(Error::NotFound)?;
        Ok(GetUserStatusResponse {
            user_id: record.id.to_string(),
            username: record.username.as_str().to_owned(),
            roles: record.roles,
            sessions_valid_after: record.sessions_valid_after.map(timestamp),
        })
    }

    /// Stores `record` with its `events` if nobody changed it since it was
    /// read; bumps its version.
    async fn save(&self, record: &mut UserRecord, events: &[Event]) -> Result<(), Error> {
        if !self.store.update(record, events).await? {
            return Err(self.lost_race(record.id).await);
        }
        self.events.wake();
        record.version += 1;
        // Before the answer: no read after it is served the old record.
        self.cache.written(record.id, record.version).await;
        Ok(())
    }

    /// The error for a conditional write that matched no row.
    async fn lost_race(&self, id: Uuid) -> Error {
        match self.store.get(id).await {
            Ok(None) => Error::NotFound,
            Ok(Some(_)) => {
                Error::Aborted("the user was changed concurrently; read it again and retry")
            }
            Err(e) => e.into(),
        }
    }
}

/// What a call does to the user it names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// The user themself, an operator, or, to read, any service.
fn authorize(caller: &Caller, target: Uuid, access: Access) -> Result<(), Error> {
    if caller.is_operator()
        || caller.user_id() == Some(target)
        || (access == Access::Read && caller.is_service())
    {
        Ok(())
    } else {
        Err(Error::PermissionDenied("you may only act on your own user"))
    }
}

/// A user id from a request: a UUID, or `me` for the caller.
fn resolve_id(caller: &Caller, raw: &str, field: &str) -> Result<Uuid, Error> {
    if raw == "me" {
        return caller
            .user_id()
            .ok_or_else(|| Error::invalid(field, "`me` needs a user's token"));
    }
    if raw.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    Uuid::parse_str(raw).map_err(|_| Error::invalid(field, "must be a user id (a UUID) or `me`"))
}

/// The fields an update touches: the mask's, or every field given a value.
fn update_paths(user: &User, mask: Option<Vec<String>>) -> Result<Vec<&'static str>, Error> {
    let mask = mask.unwrap_or_default();
    let mut v = Violations::default();
    let mut paths = Vec::new();
    if mask.is_empty() {
        if !user.username.is_empty() {
            paths.push("username");
        }
        if !user.email.is_empty() {
            paths.push("email");
        }
        if !user.display_name.is_empty() {
            paths.push("display_name");
        }
        if !user.roles.is_empty() {
            paths.push("roles");
        }
    }
    for p in &mask {
        if p == "*" {
            paths.extend_from_slice(MUTABLE_FIELDS);
        } else if let Some(f) = MUTABLE_FIELDS.iter().find(|f| **f == p.as_str()) {
            paths.push(f);
        } else if IMMUTABLE_FIELDS.contains(&p.as_str()) {
            v.add("update_mask", format!("{p} cannot be changed"));
        } else {
            v.add("update_mask", format!("{p} is not a field of User"));
        }
    }
    v.into_result()?;
    paths.sort_unstable();
    paths.dedup();
    if paths.is_empty() {
        return Err(Error::invalid("update_mask", "names no field to update"));
    }
    Ok(paths)
}

/// The User fields whose values differ between `before` and `after`.
fn changed_fields(before: &UserRecord, after: &UserRecord) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if before.username != after.username {
        changed.push("username");
    }
    if before.email != after.email {
        changed.push("email");
    }
    if before.display_name != after.display_name {
        changed.push("display_name");
    }
    if before.roles != after.roles {
        changed.push("roles");
    }
    changed
}

fn check_etag(given: &str, record: &UserRecord) -> Result<(), Error> {
    if !given.is_empty() && given != etag(record) {
        return Err(Error::Aborted(
            "etag mismatch: the user changed since it was read",
        ));
    }
    Ok(())
}

fn etag(record: &UserRecord) -> String {
    record.version.to_string()
}

/// Inputs a password must not be built from.
fn related_inputs(username: &str, email: &str, display_name: &str) -> Vec<String> {
    let mut v = vec![username.to_owned(), email.to_owned()];
    if let Some((local, _)) = email.split_once('@') {
        v.push(local.to_owned());
    }
    v.extend(display_name.split_whitespace().map(str::to_lowercase));
    v
}

/// The public view of a user; email and roles only when `full`.
fn view(r: &UserRecord, full: bool) -> User {
    User {
        id: r.id.to_string(),
        username: r.username.as_str().to_owned(),
        email: if full {
            r.email.as_str().to_owned()
        } else {
            String::new()
        },
        display_name: r.display_name.as_str().to_owned(),
        roles: if full { r.roles.clone() } else { Vec::new() },
        create_time: Some(timestamp(r.created_at)),
        update_time: Some(timestamp(r.updated_at)),
        etag: if full { etag(r) } else { String::new() },
    }
}

/// The answer to a wrong password, an unknown user and an impossible
/// password alike.
fn invalid_credentials() -> VerifyCredentialsResponse {
    VerifyCredentialsResponse {
        outcome: Outcome::Invalid.into(),
        ..Default::default()
    }
}

/// A lock's wait in whole seconds, rounded up (at least one), so a client
/// never tries again too early.
fn duration(wait: std::time::Duration) -> prost_types::Duration {
    let secs = suite_grpc::status::whole_seconds(wait);
    prost_types::Duration {
        seconds: i64::try_from(secs.max(1)).unwrap_or(i64::MAX),
        nanos: 0,
    }
}

fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Microsecond precision: what PostgreSQL keeps, so values read back compare equal.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// `ListUsers` pages (`u1:` marks its tokens).
const USERS_PAGING: Paging = Paging::new("u1:");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_paths_refuse_immutable_and_unknown_fields() {
        let user = User::default();
        assert!(update_paths(&user, Some(vec!["id".into()])).is_err());
        assert!(update_paths(&user, Some(vec!["password_hash".into()])).is_err());
        assert!(update_paths(&user, None).is_err());
        let named = User {
            display_name: "Al".into(),
            ..User::default()
        };
        assert_eq!(update_paths(&named, None).ok(), Some(vec!["display_name"]));
        assert_eq!(
            update_paths(&user, Some(vec!["email".into(), "email".into()])).ok(),
            Some(vec!["email"])
        );
    }
}

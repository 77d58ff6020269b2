//! The user service's core: who may do what, and the store, cache, hasher
//! and throttle calls behind each RPC. It takes parsed input (`domain`) and
//! answers with views (`view`); the gRPC adapter (`grpc`) converts at the
//! edge and maps its errors once. Users' lifecycle is here; passwords are in
//! `credentials`, imports in `import`.

mod access;
pub mod credentials;
pub mod email;
pub mod factors;
pub mod import;
pub mod passkeys;
pub mod reset;
pub mod view;

use crate::{
    cache::UserCache,
    coalesce::Coalescer,
    domain::{NewUser, UserRef, UserUpdate},
    error::Error,
    password::PasswordHasher,
    store::{Also, UserRecord, UserStore},
    throttle::Throttle,
};
use access::{Access, authorize};
use credentials::{CredentialCheck, related_inputs};
use email::{Link, MailPolicy};
use std::sync::Arc;
use suite_events::{Event, outbox::Wake};
use suite_grpc::paging::Paging;
use suite_proto::{
    time::now,
    user::{EmailVerificationRequested, RolesChanged, User, UserCreated, UserDeleted, UserUpdated},
};
use suite_tokens::Caller;
use uuid::Uuid;
use view::{UserPage, Visibility, check_etag, view};

/// What the core follows: when to mail, and the second factors' rules.
pub struct Policies {
    pub mail: MailPolicy,
    pub factors: factors::FactorPolicy,
}

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
    same_checks: Coalescer<CredentialCheck>,
    /// What is mailed, and when.
    mail: MailPolicy,
    /// Second factors: their store, key and rules.
    factors: factors::FactorPolicy,
}

impl UserCore {
    pub fn new(
        store: Arc<dyn UserStore>,
        hasher: PasswordHasher,
        throttle: Throttle,
        events: Wake,
        record: bool,
        cache: Arc<UserCache>,
        Policies { mail, factors }: Policies,
    ) -> Self {
        Self {
            store,
            hasher,
            throttle,
            events,
            record,
            cache,
            same_checks: Coalescer::new(crate::password::random_key()),
            mail,
            factors,
        }
    }

    /// `events`, unless recording is off (a benchmark's baseline).
    fn recorded(&self, events: Vec<Event>) -> Vec<Event> {
        if self.record { events } else { Vec::new() }
    }

    /// Deletes password-failure counters and link tokens that can never
    /// matter again.
    pub async fn prune(&self) -> Result<u64, Error> {
        let tokens = self
            .store
            .prune_tokens(now() - chrono::Duration::days(1))
            .await?;
        let enrolments = self.prune_factors().await?;
        Ok(self.throttle.prune().await? + tokens + enrolments)
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
            .hash_new(password.into_password(), related, "password")
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
            email_verified: false,
            pending_email: None,
        };
        let user = view(&record, Visibility::Full);
        let mut events = vec![Event::new(
            &UserCreated {
                user: Some(user.clone()),
            },
            record.id,
        )];
        let mut letters = Vec::new();
        let mut tokens = Vec::new();
        if self.mail.verify_on_registration {
            let Link { letter, token } = self.verification_link(&record, now);
            letters.push(letter);
            tokens.push(token);
            events.push(Event::new(
                &EmailVerificationRequested {
                    user_id: record.id.to_string(),
                },
                record.id,
            ));
        }
        let also = Also {
            letters: &letters,
            tokens: &tokens,
            ..Also::default()
        };
        self.store
            .insert(&record, &self.recorded(events), &also)
            .await?;
        self.events.wake();
        if !letters.is_empty() {
            self.mail.wake.wake();
        }
        tracing::info!(user.id = %record.id, "user created");
        Ok(user)
    }

    pub async fn get(&self, caller: &Caller, target: UserRef) -> Result<User, Error> {
        let id = target.resolve(caller, "id")?;
        authorize(caller, id, Access::Read)?;
        if let Some(user) = self.cache.get(id).await {
            return Ok(user);
        }
        let record = self.store.get(id).await?.ok_or(Error::NotFound)?;
        let user = view(&record, Visibility::Full);
        self.cache.put(id, &user).await;
        Ok(user)
    }

    /// A page of users: in full for operators, services and the caller's
    /// own, the public view of the others.
    pub async fn list(
        &self,
        caller: &Caller,
        page_size: i32,
        page_token: &str,
    ) -> Result<UserPage, Error> {
        let page = USERS_PAGING.page(page_size, page_token)?;
        let (mut rows, total) = tokio::try_join!(
            self.store.list(page.after, page.fetch()),
            self.store.count()
        )?;
        let next_page_token = USERS_PAGING.finish(page, &mut rows, |r| r.id);
        let privileged = caller.is_admin() || caller.is_service();
        let me = caller.user_id();
        Ok(UserPage {
            users: rows
                .iter()
                .map(|r| {
                    let full = privileged || me == Some(r.id);
                    view(
                        r,
                        if full {
                            Visibility::Full
                        } else {
                            Visibility::Public
                        },
                    )
                })
                .collect(),
            next_page_token,
            total_size: i32::try_from(total).unwrap_or(i32::MAX),
        })
    }

    pub async fn update(&self, caller: &Caller, update: UserUpdate) -> Result<User, Error> {
        let UserUpdate {
            target,
            changes,
            etag,
        } = update;
        let id = target.resolve(caller, "user.id")?;
        authorize(caller, id, Access::Write)?;
        if changes.roles.is_some() && !caller.is_operator() {
            return Err(Error::PermissionDenied("only an admin may change roles"));
        }

        let mut record = self.store.get(id).await?.ok_or(Error::NotFound)?;
        check_etag(&etag, &record)?;
        let before = record.clone();
        let mut events = Vec::new();
        let mut links = Vec::new();
        if let Some(u) = changes.username {
            record.username = u;
        }
        match changes.email {
            Some(e) if e == record.email => {}
            // An operator's change stands at once, unverified (a link goes
            // to the new address if verification is on).
            Some(e) if caller.is_operator() => {
                record.email = e;
                record.email_verified = false;
                record.pending_email = None;
            }
            // The user's own waits for the new address to confirm.
            Some(e) => {
                self.require_step_up(caller, id).await?;
                self.request_email_change(&mut record, e, &mut events, &mut links)
                    .await?;
            }
            None => {}
        }
        if let Some(d) = changes.display_name {
            record.display_name = d;
        }
        if let Some(r) = changes.roles {
            record.roles = r;
        }
        record.updated_at = now();
        let changed = changed_fields(&before, &record);
        if changed.contains(&"email") && self.mail.verify_on_registration {
            links.push(self.verification_link(&record, record.updated_at));
            events.push(Event::new(
                &EmailVerificationRequested {
                    user_id: id.to_string(),
                },
                id,
            ));
        }
        let mut after = view(&record, Visibility::Full);
        // The version the save is about to store.
        after.etag = (record.version + 1).to_string();
        events.insert(
            0,
            Event::new(
                &UserUpdated {
                    user: Some(after),
                    changed_fields: changed.iter().map(|f| (*f).to_owned()).collect(),
                },
                id,
            ),
        );
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
        let (letters, tokens) = Link::split(links);
        let also = Also {
            letters: &letters,
            tokens: &tokens,
            ..Also::default()
        };
        self.save_with(&mut record, &self.recorded(events), &also)
            .await?;
        Ok(view(&record, Visibility::Full))
    }

    pub async fn delete(&self, caller: &Caller, target: UserRef, etag: &str) -> Result<(), Error> {
        let id = target.resolve(caller, "id")?;
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

    /// Stores `record` with its `events` if nobody changed it since it was
    /// read, and what `also` holds in the same transaction; bumps its version.
    async fn save_with(
        &self,
        record: &mut UserRecord,
        events: &[Event],
        also: &Also<'_>,
    ) -> Result<(), Error> {
        if !self.store.update(record, events, also).await? {
            return Err(self.lost_race(record.id).await);
        }
        self.events.wake();
        if !also.letters.is_empty() {
            self.mail.wake.wake();
        }
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

/// `ListUsers` pages (`u1:` marks its tokens).
const USERS_PAGING: Paging = Paging::new("u1:");

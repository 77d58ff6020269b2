//! Who may act on which user: the rules that admit a caller.

use crate::error::Error;
use suite_tokens::Caller;
use uuid::Uuid;

/// What a call does to the user it names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
}

/// The user themself, an operator, or, to read, any service.
pub(super) fn authorize(caller: &Caller, target: Uuid, access: Access) -> Result<(), Error> {
    if caller.is_operator()
        || caller.user_id() == Some(target)
        || (access == Access::Read && caller.is_service())
    {
        Ok(())
    } else {
        Err(Error::PermissionDenied("you may only act on your own user"))
    }
}

/// Refused unless `caller` is a service (the auth service's calls).
pub(super) fn services_only(caller: &Caller, refusal: &'static str) -> Result<(), Error> {
    if caller.is_service() {
        Ok(())
    } else {
        Err(Error::PermissionDenied(refusal))
    }
}

/// Refused unless `caller` is an operator (an admin, or suitectl).
pub(super) fn operators_only(caller: &Caller, refusal: &'static str) -> Result<(), Error> {
    if caller.is_operator() {
        Ok(())
    } else {
        Err(Error::PermissionDenied(refusal))
    }
}

//! Outgoing mail: the letters the service writes ([`letters`]), the
//! single-use tokens their links carry ([`links`]), the outbox they wait in
//! ([`queue`], written by the store in the transaction of their change) and
//! the mailer that delivers them ([`mailer`]) over SMTP or to the
//! development mailbox ([`transport`]).

pub mod config;
pub mod letters;
pub mod links;
pub mod mailer;
pub mod queue;
pub mod transport;

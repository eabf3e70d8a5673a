//! The shared shell of the Mio Spin components: what every component needs around the core.
//!
//! Spin SQLite access ([`db`]) and the schema ([`migrations`], every version, applied on
//! open, checked in the request's first statement), bearer-token authentication ([`auth`]),
//! statements scoped to the caller's account, which on the hot routes check the token
//! themselves ([`owner`]), reading bounded request bodies ([`request`]), what routers share
//! ([`routing`]), problem+json errors ([`error`], [`response`]), the clock, randomness and
//! variables ([`system`]), talking to Stripe with a deadline ([`stripe_http`]), and the storage
//! several components share: account settings, customer overrides, job planning writes
//! ([`jobs`]), payment attempts as the core's state machine needs them ([`payments`], the tick
//! and the webhook), a customer with its card as the API answers with it ([`customers`], the
//! customer and card APIs), cards, refunds and MioPay readiness ([`cards`], the customer and
//! card APIs and the webhook), and `Idempotency-Key` on creating routes ([`idempotency`]:
//! stored keys and answers, a route's writes and its answer in one transaction).
//!
//! It makes no business decisions: which jobs a booking needs, when they are due and whether an
//! automation is on are the core's (`mio_shared`); this crate loads the core's inputs and
//! writes its answers. It deliberately holds no routes and no handlers: those stay in each
//! component.

pub mod accounts;
pub mod auth;
pub mod cards;
pub mod claims;
pub mod customers;
pub mod db;
pub mod error;
pub mod idempotency;
pub mod jobs;
pub mod messages;
pub mod migrations;
pub mod outbound;
pub mod overrides;
pub mod owner;
pub mod payments;
pub mod request;
pub mod response;
pub mod routing;
pub use mio_shared::rules_body;
pub mod settings;
pub mod stripe_http;
pub mod system;
#[cfg(any(test, feature = "test-db"))]
pub mod test_db;

pub use auth::Caller;
pub use db::{Record, SpinDb, Sql};
pub use error::ApiError;
pub use owner::Owner;
pub use request::{Incoming, Media};

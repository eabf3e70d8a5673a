//! Account bootstrap, customers (with bulk import), bookings and the account's automation
//! settings, over HTTP.
//!
//! It makes no business decisions itself, and no outbound requests: the customer's card on
//! file (which asks Stripe and sends links) is the `card-api` component's, so the components
//! that hold the customer list have no outbound network access. See `app` for the request
//! pipeline.

pub mod app;
mod csv;
pub mod handlers;
mod router;
mod storage;

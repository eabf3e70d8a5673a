//! The API's routes as a library, so that every screen and every HTTP route runs the same code.
//!
//! - [`customers`]: account bootstrap, customers (with bulk import), bookings, the account's
//!   settings, activity and feedback: the `customer-api` component serves it.
//! - [`overrides`]: per-customer automation overrides, their effective view and history, and
//!   the OpenAPI document: the `override-toggle` component serves it.
//!
//! Both are thin shells over the core (`mio_shared`): they parse requests, read and write Spin
//! SQLite through `mio_platform`, and answer. The `console` component calls their handlers
//! in-process and renders the answers as HTML. A crate with no Spin export of its own: each
//! component's entry point is its own crate's.

pub mod customers;
pub mod overrides;

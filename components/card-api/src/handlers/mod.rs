//! One function per route: decode, call the core, ask Stripe, read or write storage, answer.

pub mod payment_method_requests;
pub mod payment_methods;

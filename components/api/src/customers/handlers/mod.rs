//! One function per route: decode, call the core, read or write storage, answer.

pub mod accounts;
pub mod activity;
pub mod bookings;
pub mod customers;
pub mod feedback;
pub mod import;
pub mod notifications;
pub mod settings;

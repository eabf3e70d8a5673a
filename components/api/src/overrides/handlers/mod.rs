//! One function per route: decode, call the core, read or write storage, answer.

pub mod openapi;
pub mod overrides;

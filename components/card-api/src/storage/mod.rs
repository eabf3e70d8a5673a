//! This component's SQL, one module per table; the connection, the schema, and the customers and
//! cards it shares with other components live in `mio_platform`.

pub mod payment_method_requests;

pub use mio_platform::db::Sql;
pub use mio_platform::{cards, customers};

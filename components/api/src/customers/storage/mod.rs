//! This component's SQL, one module per table; the connection, the schema and the tables it
//! shares with other components live in `mio_platform`.

pub mod activity;
pub mod bookings;
pub mod customers;
pub mod feedback;

pub use mio_platform::accounts;
pub use mio_platform::db::Sql;

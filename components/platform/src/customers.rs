//! A customer as the API answers with it, shared by the customer API (which owns the customers:
//! create, list, update, import, delete) and the card API (which checks the customer and answers
//! with it once its card changed): the customer columns, reading one customer with its primary
//! card, and turning a row into a [`Customer`]. Every statement is scoped by `account_id`: a
//! customer of another account is indistinguishable from one that does not exist.
//!
//! It writes nothing: the customers' writes stay in the customer API, the cards' in [`cards`].
//!
//! [`cards`]: crate::cards

use anyhow::Context;
use mio_shared::{Customer, CustomerId, Notifications};
use spin_sdk::sqlite::QueryResult;

use crate::db::{Record, Sql, text};
use crate::owner::Owner;

/// The columns of a `customers` row that [`from_row`] reads by name (for `SELECT` and
/// `RETURNING` lists built with `concat!`).
#[macro_export]
macro_rules! customer_columns {
    () => {
        "seq, id, name, email, phone, service_address, billing_address, notes, \
         notify_email, notify_sms, stripe_customer_id, created_at, updated_at"
    };
}

/// The customer columns qualified for a join `customers c LEFT JOIN payment_methods pm`, with
/// the primary card as `pm_*` (all NULL without a card), as [`with_card`] reads them.
#[macro_export]
macro_rules! customer_card_columns {
    () => {
        "c.seq AS seq, c.id AS id, c.name AS name, c.email AS email, c.phone AS phone, \
         c.service_address AS service_address, c.billing_address AS billing_address, \
         c.notes AS notes, c.notify_email AS notify_email, c.notify_sms AS notify_sms, \
         c.stripe_customer_id AS stripe_customer_id, c.created_at AS created_at, \
         c.updated_at AS updated_at, pm.payment_method_id AS pm_id, pm.brand AS pm_brand, \
         pm.last4 AS pm_last4, pm.exp_month AS pm_exp_month, pm.exp_year AS pm_exp_year"
    };
}

// The card is looked up by its primary key, one probe per customer row.
const SELECT_CUSTOMER: &str = concat!(
    "SELECT ",
    customer_card_columns!(),
    " FROM customers c LEFT JOIN payment_methods pm \
     ON pm.customer_id = c.id AND pm.account_id = c.account_id \
     WHERE c.account_id = {account} AND c.id = ?2"
);

/// The customer `id` of the account with its primary card, if it exists.
pub fn find(db: &impl Sql, account_id: &str, id: &CustomerId) -> anyhow::Result<Option<Customer>> {
    find_as(db, &Owner::account(account_id), id)
}

/// [`find`] for any [`Owner`] (under a token, one statement checks the token and reads).
pub fn find_as(
    db: &impl Sql,
    owner: &Owner<'_>,
    id: &CustomerId,
) -> anyhow::Result<Option<Customer>> {
    let result = owner
        .execute(db, SELECT_CUSTOMER, &[text(id.as_str())])
        .context("reading a customer")?;
    first_with_card(&result)
}

fn first_with_card(result: &QueryResult) -> anyhow::Result<Option<Customer>> {
    Record::all(result)
        .next()
        .map(|row| with_card(&row))
        .transpose()
}

/// A customer row of a join with `payment_methods` (see [`customer_card_columns!`]).
pub fn with_card(row: &Record<'_>) -> anyhow::Result<Customer> {
    let mut customer = from_row(row)?;
    customer.primary_payment_method = crate::cards::summary_from(row)?;
    Ok(customer)
}

/// A customer row (see [`customer_columns!`]), without its card.
pub fn from_row(row: &Record<'_>) -> anyhow::Result<Customer> {
    Ok(Customer {
        id: CustomerId::parse(&row.text("id")?)?,
        name: row.text("name")?,
        email: row.optional_text("email")?,
        phone: row.optional_text("phone")?,
        service_address: row.optional_text("service_address")?,
        billing_address: row.optional_text("billing_address")?,
        notes: row.optional_text("notes")?,
        notifications: Notifications {
            email: row.boolean("notify_email")?,
            sms: row.boolean("notify_sms")?,
        },
        stripe_customer_id: row.optional_text("stripe_customer_id")?,
        primary_payment_method: None,
        created_at: row.timestamp("created_at")?,
        updated_at: row.timestamp("updated_at")?,
    })
}

//! `POST /api/v1/customers/import`: many customers at once, from CSV or a JSON array.
//!
//! Every row is validated by the core like a single `POST /customers` body; valid rows are
//! kept even when others fail. A row whose e-mail matches a customer of the account
//! (case-insensitively) updates that customer instead of creating a duplicate, and so does a
//! later row of the same file with an earlier row's e-mail (it is laid over the earlier one).
//! Writes go in multi-row statements of a few hundred rows, so 10,000 rows take a few dozen
//! statements.

use crate::customers::csv;
use crate::customers::storage::Sql;
use crate::customers::storage::customers::{self, ImportRecord};
use mio_platform::{ApiError, Media, response, system};
use mio_shared::customer::READ_ONLY_CUSTOMER_FIELDS;
use mio_shared::{Account, CustomerBody, CustomerId, FieldError, NewCustomer, Timestamp, json};
use serde::Serialize;
use spin_sdk::http::Response;
use std::collections::HashMap;

/// The largest import body: 16 MiB.
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

/// The columns a CSV header may name, in any order; `name` is required.
const CSV_COLUMNS: [&str; 6] = [
    "name",
    "email",
    "phone",
    "service_address",
    "billing_address",
    "notes",
];

/// The answer.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct ImportReport {
    /// Customers created.
    pub created: usize,
    /// Rows that updated a customer (an existing one, or one created by an earlier row).
    pub updated: usize,
    /// Rows refused, by line.
    pub failed: Vec<FailedRow>,
}

/// A refused row.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct FailedRow {
    /// CSV: the physical line the record starts on (the header is line 1). JSON: the array
    /// index + 1.
    pub line: usize,
    /// Why.
    pub errors: Vec<FieldError>,
}

/// Imports the body (CSV or JSON array) into the account.
pub fn import(
    db: &impl Sql,
    account: &Account,
    media: Media,
    body: &[u8],
    now: Timestamp,
) -> Result<Response, ApiError> {
    let rows = match media {
        Media::Csv => csv_rows(body)?,
        Media::Json => json_rows(body)?,
        // The route accepts only the two above (`app` asks `Incoming::body` for them).
        Media::Form | Media::Multipart => {
            return Err(ApiError::UnsupportedMediaType(
                "application/json` or `text/csv",
            ));
        }
    };
    let report = store(db, account.id.as_str(), rows, now)?;
    Ok(response::json(200, &report, &[])?)
}

type Row = (usize, Result<ImportRecord, Vec<FieldError>>);

fn csv_rows(body: &[u8]) -> Result<Vec<Row>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::Validation(vec![FieldError::new("body", "must be UTF-8 text")]))?;
    let mut records = csv::records(text).into_iter();
    let header = records.next().ok_or_else(|| {
        ApiError::Validation(vec![FieldError::new(
            "header",
            "the CSV is empty; the first line must name the columns",
        )])
    })?;
    let columns = header_columns(&header)?;
    Ok(records
        .map(|record| {
            let outcome = if let Some(error) = record.error {
                Err(vec![FieldError::new("row", error)])
            } else if record.fields.len() != columns.len() {
                Err(vec![FieldError::new(
                    "row",
                    format!(
                        "has {} fields; the header has {}",
                        record.fields.len(),
                        columns.len()
                    ),
                )])
            } else {
                let mut body = CustomerBody::default();
                for (column, value) in columns.iter().zip(record.fields) {
                    // An empty cell is an absent field.
                    let value = (!value.trim().is_empty()).then_some(value);
                    match *column {
                        "name" => body.name = value,
                        "email" => body.email = value,
                        "phone" => body.phone = value,
                        "service_address" => body.service_address = value,
                        "billing_address" => body.billing_address = value,
                        _ => body.notes = value,
                    }
                }
                record_from(body)
            };
            (record.line, outcome)
        })
        .collect())
}

/// The header's columns (trimmed, case-insensitive); unknown, repeated or missing required
/// columns refuse the whole file.
fn header_columns(header: &csv::CsvRecord) -> Result<Vec<&'static str>, ApiError> {
    let mut errors = Vec::new();
    let mut columns = Vec::new();
    for name in &header.fields {
        let wanted = name.trim().to_ascii_lowercase();
        match CSV_COLUMNS.iter().find(|c| **c == wanted) {
            Some(column) if columns.contains(column) => errors.push(FieldError::new(
                "header",
                format!("column `{column}` is given more than once"),
            )),
            Some(column) => columns.push(*column),
            None => errors.push(FieldError::new(
                "header",
                format!(
                    "unknown column `{}`; the columns are {}",
                    name.trim(),
                    CSV_COLUMNS.join(", ")
                ),
            )),
        }
    }
    if header.error.is_some() {
        errors.push(FieldError::new("header", "the header line is malformed"));
    }
    if !columns.contains(&"name") && errors.is_empty() {
        errors.push(FieldError::new("header", "must include the `name` column"));
    }
    if errors.is_empty() {
        Ok(columns)
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn json_rows(body: &[u8]) -> Result<Vec<Row>, ApiError> {
    let items: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(|e| {
        ApiError::MalformedJson(format!(
            "The body must be a JSON array of customers (or send text/csv): {e}."
        ))
    })?;
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let outcome = serde_json::to_vec(&item)
                .map_err(|e| vec![FieldError::new("row", e.to_string())])
                .and_then(|bytes| {
                    json::decode::<CustomerBody>(&bytes, READ_ONLY_CUSTOMER_FIELDS).map_err(
                        |error| match error {
                            mio_shared::BodyError::Invalid(errors) => errors,
                            mio_shared::BodyError::Malformed(detail) => {
                                vec![FieldError::new("row", detail)]
                            }
                        },
                    )
                })
                .and_then(record_from);
            (index + 1, outcome)
        })
        .collect())
}

/// Validates one row through the core, keeping which optional settings it gave.
fn record_from(body: CustomerBody) -> Result<ImportRecord, Vec<FieldError>> {
    let given = body.notifications.as_ref().map(|n| (n.email, n.sms));
    let customer = NewCustomer::try_from(body)?;
    Ok(ImportRecord {
        name: customer.name.as_str().to_owned(),
        email: customer.email.as_ref().map(|e| e.as_str().to_owned()),
        phone: customer.phone.as_ref().map(|p| p.as_str().to_owned()),
        phone_digits: customer.phone.as_ref().map(|p| p.digits()),
        service_address: customer
            .service_address
            .as_ref()
            .map(|a| a.as_str().to_owned()),
        billing_address: customer
            .billing_address
            .as_ref()
            .map(|a| a.as_str().to_owned()),
        notes: customer.notes.as_ref().map(|n| n.as_str().to_owned()),
        notify_email: given.and_then(|(email, _)| email),
        notify_sms: given.and_then(|(_, sms)| sms),
        stripe_customer_id: customer
            .stripe_customer_id
            .as_ref()
            .map(|s| s.as_str().to_owned()),
    })
}

/// Merges same-e-mail rows, matches existing customers, and writes in bulk.
fn store(
    db: &impl Sql,
    account_id: &str,
    rows: Vec<Row>,
    now: Timestamp,
) -> Result<ImportReport, ApiError> {
    let mut report = ImportReport::default();
    // (first line, record); rows of the file with the same e-mail are merged in file order.
    let mut merged: Vec<(usize, ImportRecord)> = Vec::new();
    let mut by_email: HashMap<String, usize> = HashMap::new();
    for (line, outcome) in rows {
        match outcome {
            Err(errors) => report.failed.push(FailedRow { line, errors }),
            Ok(record) => match record.email_folded() {
                Some(email) => match by_email.get(&email) {
                    Some(&index) => {
                        merged[index].1.lay_over(record);
                        report.updated += 1;
                    }
                    None => {
                        by_email.insert(email, merged.len());
                        merged.push((line, record));
                    }
                },
                None => merged.push((line, record)),
            },
        }
    }

    let emails: Vec<String> = by_email.keys().cloned().collect();
    let existing = customers::ids_by_email(db, account_id, &emails)?;
    let mut to_update: Vec<(String, usize)> = Vec::new();
    let mut to_insert: Vec<(CustomerId, usize)> = Vec::new();
    for (index, (_, record)) in merged.iter().enumerate() {
        match record.email_folded().and_then(|e| existing.get(&e)) {
            Some(id) => to_update.push((id.clone(), index)),
            None => to_insert.push((CustomerId::from_random(&system::random_bytes()?), index)),
        }
    }

    // Inserts first; a row skipped because its e-mail was meanwhile taken becomes an update.
    let inserted = customers::insert_imported(
        db,
        account_id,
        &to_insert
            .iter()
            .map(|(id, i)| (id.clone(), &merged[*i].1))
            .collect::<Vec<_>>(),
        now,
    )?;
    report.created += inserted.len();
    let raced: Vec<usize> = to_insert
        .iter()
        .filter(|(id, _)| !inserted.contains(id.as_str()))
        .map(|(_, i)| *i)
        .collect();
    if !raced.is_empty() {
        let emails: Vec<String> = raced
            .iter()
            .filter_map(|i| merged[*i].1.email_folded())
            .collect();
        let now_existing = customers::ids_by_email(db, account_id, &emails)?;
        for index in raced {
            match merged[index]
                .1
                .email_folded()
                .and_then(|e| now_existing.get(&e))
            {
                Some(id) => to_update.push((id.clone(), index)),
                None => report.failed.push(concurrent(merged[index].0)),
            }
        }
    }

    let updated = customers::update_imported(
        db,
        account_id,
        &to_update
            .iter()
            .map(|(id, i)| (id.clone(), &merged[*i].1))
            .collect::<Vec<_>>(),
        now,
    )?;
    for (id, index) in &to_update {
        if updated.contains(id) {
            report.updated += 1;
        } else {
            // Deleted meanwhile: report it rather than silently re-creating it.
            report.failed.push(concurrent(merged[*index].0));
        }
    }
    report.failed.sort_by_key(|row| row.line);
    Ok(report)
}

fn concurrent(line: usize) -> FailedRow {
    FailedRow {
        line,
        errors: vec![FieldError::new(
            "email",
            "the customer with this e-mail changed during the import; import this row again",
        )],
    }
}

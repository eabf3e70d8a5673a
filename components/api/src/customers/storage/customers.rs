//! The `customers` table. Every statement is scoped by `account_id`: a customer of another
//! account is indistinguishable from one that does not exist. Reading one customer, and how a
//! row reads, are the platform's (`mio_platform::customers`): the card API answers with
//! customers too.

use anyhow::Context;
use mio_platform::Owner;
use mio_platform::cards::primary_card;
use mio_platform::customers::{from_row, with_card};
use mio_platform::db::{Record, Sql, boolean, optional_text, rfc3339, text};
use mio_platform::jobs::{BULK_ROWS, list_placeholders, values_placeholders};
use mio_shared::{
    Customer, CustomerId, CustomerPatch, ListQuery, NewCustomer, Patch, Timestamp, fold,
};
use spin_sdk::sqlite::Value;
use std::collections::{HashMap, HashSet};

pub use mio_platform::customers::find;

const INSERT_CUSTOMER: &str = concat!(
    "INSERT INTO customers (id, account_id, name, name_folded, email, email_folded, phone, \
     phone_digits, service_address, billing_address, notes, notify_email, notify_sms, \
     stripe_customer_id, created_at, updated_at) \
     SELECT ?2, caller.id, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15 \
     FROM (SELECT {account} AS id) AS caller WHERE caller.id IS NOT NULL \
     RETURNING ",
    mio_platform::customer_columns!()
);

// `?3` is a folded, LIKE-escaped `%text%` (or NULL for no filter); `?4` a `%digits%` pattern
// for phone-like search text (or NULL).
const LIST_CUSTOMERS: &str = concat!(
    "SELECT ",
    mio_platform::customer_card_columns!(),
    " FROM customers c LEFT JOIN payment_methods pm \
     ON pm.customer_id = c.id AND pm.account_id = c.account_id \
     WHERE c.account_id = {account} AND c.seq > ?2 \
       AND (?3 IS NULL \
            OR c.name_folded LIKE ?3 ESCAPE '\\' \
            OR c.email_folded LIKE ?3 ESCAPE '\\' \
            OR c.phone LIKE ?3 ESCAPE '\\' \
            OR c.phone_digits LIKE ?4) \
     ORDER BY c.seq \
     LIMIT ?5"
);

// One statement, so concurrent updates of different fields never undo each other: each
// column is replaced only when its flag is 1, otherwise it keeps its current value.
const UPDATE_CUSTOMER: &str = concat!(
    "UPDATE customers SET \
     name = CASE WHEN ?3 THEN ?4 ELSE name END, \
     name_folded = CASE WHEN ?3 THEN ?5 ELSE name_folded END, \
     email = CASE WHEN ?6 THEN ?7 ELSE email END, \
     email_folded = CASE WHEN ?6 THEN ?8 ELSE email_folded END, \
     phone = CASE WHEN ?9 THEN ?10 ELSE phone END, \
     phone_digits = CASE WHEN ?9 THEN ?11 ELSE phone_digits END, \
     service_address = CASE WHEN ?12 THEN ?13 ELSE service_address END, \
     billing_address = CASE WHEN ?14 THEN ?15 ELSE billing_address END, \
     notes = CASE WHEN ?16 THEN ?17 ELSE notes END, \
     notify_email = COALESCE(?18, notify_email), \
     notify_sms = COALESCE(?19, notify_sms), \
     stripe_customer_id = CASE WHEN ?20 THEN ?21 ELSE stripe_customer_id END, \
     updated_at = ?22 \
     WHERE account_id = ?1 AND id = ?2 \
     RETURNING ",
    mio_platform::customer_columns!()
);

const DELETE_CUSTOMER: &str =
    "DELETE FROM customers WHERE account_id = ?1 AND id = ?2 RETURNING id";

/// Stores a new customer and returns it as stored; `None` when the owner is a token that names
/// no account (nothing is written).
pub fn insert(
    db: &impl Sql,
    owner: &Owner<'_>,
    id: &CustomerId,
    customer: &NewCustomer,
    now: Timestamp,
) -> anyhow::Result<Option<Customer>> {
    let email = customer.email.as_ref().map(|e| e.as_str());
    let phone = customer.phone.as_ref();
    let result = owner
        .execute(
            db,
            INSERT_CUSTOMER,
            &[
                text(id.as_str()),
                text(customer.name.as_str()),
                text(&fold(customer.name.as_str())),
                optional_text(email),
                optional_text(email.map(fold).as_deref()),
                optional_text(phone.map(|p| p.as_str())),
                optional_text(phone.map(|p| p.digits()).as_deref()),
                optional_text(customer.service_address.as_ref().map(|a| a.as_str())),
                optional_text(customer.billing_address.as_ref().map(|a| a.as_str())),
                optional_text(customer.notes.as_ref().map(|n| n.as_str())),
                boolean(customer.notifications.email),
                boolean(customer.notifications.sms),
                optional_text(customer.stripe_customer_id.as_ref().map(|s| s.as_str())),
                text(&now.to_string()),
            ],
        )
        .context("inserting a customer")?;
    first(&result)
}

/// Up to `query.limit.fetch()` customers after the cursor, in creation order, with their
/// sequence numbers (for the next cursor).
pub fn list(
    db: &impl Sql,
    owner: &Owner<'_>,
    query: &ListQuery,
) -> anyhow::Result<Vec<(i64, Customer)>> {
    let after = query.cursor.map_or(0, |cursor| cursor.after_seq());
    let result = owner
        .execute_page(
            db,
            LIST_CUSTOMERS,
            &[
                Value::Integer(after),
                optional_text(query.search.as_ref().map(|s| s.like_pattern()).as_deref()),
                optional_text(
                    query
                        .search
                        .as_ref()
                        .and_then(|s| s.phone_digits_pattern())
                        .as_deref(),
                ),
                Value::Integer(query.limit.fetch()),
            ],
            "page.seq",
        )
        .context("listing customers")?;
    Record::all(&result)
        .map(|row| Ok((row.integer("seq")?, with_card(&row)?)))
        .collect()
}

/// Applies `patch` in one statement; `None` when the account has no such customer.
pub fn update(
    db: &impl Sql,
    account_id: &str,
    id: &CustomerId,
    patch: &CustomerPatch,
    now: Timestamp,
) -> anyhow::Result<Option<Customer>> {
    let name = match &patch.name {
        Some(name) => Change::to(name.as_str()),
        None => Change::KEEP,
    };
    let email = Change::of(&patch.email, |e| e.as_str().to_owned());
    let phone = Change::of(&patch.phone, |p| p.as_str().to_owned());
    let phone_digits = Change::of(&patch.phone, |p| p.digits());
    let service_address = Change::of(&patch.service_address, |a| a.as_str().to_owned());
    let billing_address = Change::of(&patch.billing_address, |a| a.as_str().to_owned());
    let notes = Change::of(&patch.notes, |n| n.as_str().to_owned());
    let stripe_customer_id = Change::of(&patch.stripe_customer_id, |s| s.as_str().to_owned());
    let optional_bool = |b: Option<bool>| b.map_or(Value::Null, boolean);
    let result = db
        .execute(
            UPDATE_CUSTOMER,
            &[
                text(account_id),
                text(id.as_str()),
                name.flag(),
                name.value(),
                name.folded(),
                email.flag(),
                email.value(),
                email.folded(),
                phone.flag(),
                phone.value(),
                phone_digits.value(),
                service_address.flag(),
                service_address.value(),
                billing_address.flag(),
                billing_address.value(),
                notes.flag(),
                notes.value(),
                optional_bool(patch.notifications.email),
                optional_bool(patch.notifications.sms),
                stripe_customer_id.flag(),
                stripe_customer_id.value(),
                text(&now.to_string()),
            ],
        )
        .context("updating a customer")?;
    let Some(mut customer) = first(&result)? else {
        return Ok(None);
    };
    customer.primary_payment_method = primary_card(db, account_id, id)?;
    Ok(Some(customer))
}

/// One text column of an update: whether it changes, and to what (`None` is NULL).
struct Change {
    set: bool,
    value: Option<String>,
}

impl Change {
    const KEEP: Change = Change {
        set: false,
        value: None,
    };

    fn to(value: &str) -> Self {
        Self {
            set: true,
            value: Some(value.to_owned()),
        }
    }

    fn of<T>(patch: &Patch<T>, render: impl Fn(&T) -> String) -> Self {
        match patch {
            Patch::Keep => Change::KEEP,
            Patch::Clear => Self {
                set: true,
                value: None,
            },
            Patch::Set(value) => Self {
                set: true,
                value: Some(render(value)),
            },
        }
    }

    fn flag(&self) -> Value {
        boolean(self.set)
    }

    fn value(&self) -> Value {
        optional_text(self.value.as_deref())
    }

    fn folded(&self) -> Value {
        optional_text(self.value.as_deref().map(fold).as_deref())
    }
}

/// Deletes the customer row; `false` when the account has no such customer.
pub fn delete(db: &impl Sql, account_id: &str, id: &CustomerId) -> anyhow::Result<bool> {
    let result = db
        .execute(DELETE_CUSTOMER, &[text(account_id), text(id.as_str())])
        .context("deleting a customer")?;
    Ok(!result.rows.is_empty())
}

/// One customer of a bulk import, validated: what to create, or what to change on an existing
/// customer (`None` fields keep the stored value; on create, notifications default to on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    /// Required.
    pub name: String,
    /// As given.
    pub email: Option<String>,
    /// As given.
    pub phone: Option<String>,
    /// The phone's digits.
    pub phone_digits: Option<String>,
    /// As given.
    pub service_address: Option<String>,
    /// As given.
    pub billing_address: Option<String>,
    /// As given.
    pub notes: Option<String>,
    /// E-mail notifications, if given.
    pub notify_email: Option<bool>,
    /// SMS notifications, if given.
    pub notify_sms: Option<bool>,
    /// Stripe customer id, if given.
    pub stripe_customer_id: Option<String>,
}

impl ImportRecord {
    /// The folded e-mail that import matches existing customers on.
    pub fn email_folded(&self) -> Option<String> {
        self.email.as_deref().map(fold)
    }

    /// Lays `later`'s given fields over this record (a later row of the same file).
    pub fn lay_over(&mut self, later: ImportRecord) {
        fn over<T>(field: &mut Option<T>, later: Option<T>) {
            if later.is_some() {
                *field = later;
            }
        }
        self.name = later.name;
        over(&mut self.email, later.email);
        over(&mut self.phone, later.phone);
        over(&mut self.phone_digits, later.phone_digits);
        over(&mut self.service_address, later.service_address);
        over(&mut self.billing_address, later.billing_address);
        over(&mut self.notes, later.notes);
        over(&mut self.notify_email, later.notify_email);
        over(&mut self.notify_sms, later.notify_sms);
        over(&mut self.stripe_customer_id, later.stripe_customer_id);
    }

    /// The 13 values of the import statements' `v` rows, after the id.
    fn values(&self, id: &str) -> [Value; IMPORT_COLUMNS] {
        let optional_bool = |b: Option<bool>| b.map_or(Value::Null, boolean);
        [
            text(id),
            text(&self.name),
            text(&fold(&self.name)),
            optional_text(self.email.as_deref()),
            optional_text(self.email_folded().as_deref()),
            optional_text(self.phone.as_deref()),
            optional_text(self.phone_digits.as_deref()),
            optional_text(self.service_address.as_deref()),
            optional_text(self.billing_address.as_deref()),
            optional_text(self.notes.as_deref()),
            optional_bool(self.notify_email),
            optional_bool(self.notify_sms),
            optional_text(self.stripe_customer_id.as_deref()),
        ]
    }
}

const IMPORT_COLUMNS: usize = 13;

// The oldest customer wins when several already share an address.
const IDS_BY_EMAIL: &str = "SELECT id, email_folded FROM customers \
     WHERE account_id = ?1 AND email_folded IN ({list}) ORDER BY seq DESC";

// Many customers per statement. The NOT EXISTS guard makes a row whose e-mail another
// request has meanwhile given to a customer insert nothing (the caller then updates that
// customer instead), so two concurrent imports of one file do not duplicate customers.
// ?1 account, ?2 now.
const IMPORT_INSERT: &str = "WITH v (id, name, name_folded, email, email_folded, phone, \
     phone_digits, service_address, billing_address, notes, notify_email, notify_sms, \
     stripe_customer_id) AS (VALUES {rows}) \
     INSERT INTO customers (id, account_id, name, name_folded, email, email_folded, phone, \
     phone_digits, service_address, billing_address, notes, notify_email, notify_sms, \
     stripe_customer_id, created_at, updated_at) \
     SELECT v.id, ?1, v.name, v.name_folded, v.email, v.email_folded, v.phone, v.phone_digits, \
     v.service_address, v.billing_address, v.notes, COALESCE(v.notify_email, 1), \
     COALESCE(v.notify_sms, 1), v.stripe_customer_id, ?2, ?2 FROM v \
     WHERE v.email_folded IS NULL OR NOT EXISTS (SELECT 1 FROM customers c \
       WHERE c.account_id = ?1 AND c.email_folded = v.email_folded) \
     RETURNING id";

// Given fields replace, absent ones (NULL in `v`) keep the stored value. ?1 account, ?2 now.
const IMPORT_UPDATE: &str = "WITH v (id, name, name_folded, email, email_folded, phone, \
     phone_digits, service_address, billing_address, notes, notify_email, notify_sms, \
     stripe_customer_id) AS (VALUES {rows}) \
     UPDATE customers SET name = v.name, name_folded = v.name_folded, \
     email = COALESCE(v.email, customers.email), \
     email_folded = COALESCE(v.email_folded, customers.email_folded), \
     phone = COALESCE(v.phone, customers.phone), \
     phone_digits = COALESCE(v.phone_digits, customers.phone_digits), \
     service_address = COALESCE(v.service_address, customers.service_address), \
     billing_address = COALESCE(v.billing_address, customers.billing_address), \
     notes = COALESCE(v.notes, customers.notes), \
     notify_email = COALESCE(v.notify_email, customers.notify_email), \
     notify_sms = COALESCE(v.notify_sms, customers.notify_sms), \
     stripe_customer_id = COALESCE(v.stripe_customer_id, customers.stripe_customer_id), \
     updated_at = ?2 \
     FROM v WHERE customers.account_id = ?1 AND customers.id = v.id \
     RETURNING customers.id AS id";

/// The ids of the account's customers with these folded e-mails (one statement per
/// [`BULK_ROWS`] addresses): folded e-mail → id.
pub fn ids_by_email(
    db: &impl Sql,
    account_id: &str,
    emails_folded: &[String],
) -> anyhow::Result<HashMap<String, String>> {
    let mut found = HashMap::new();
    for chunk in emails_folded.chunks(BULK_ROWS) {
        let sql = IDS_BY_EMAIL.replace("{list}", &list_placeholders(chunk.len(), 2));
        let mut params = vec![text(account_id)];
        params.extend(chunk.iter().map(|e| text(e)));
        let result = db
            .execute(&sql, &params)
            .context("finding customers by e-mail")?;
        // Descending `seq`: the last insert into the map is the oldest customer.
        for row in Record::all(&result) {
            found.insert(row.text("email_folded")?, row.text("id")?);
        }
    }
    Ok(found)
}

/// Creates customers in bulk; returns the ids actually inserted (a row whose e-mail now
/// belongs to a customer is skipped, see [`IMPORT_INSERT`]).
pub fn insert_imported(
    db: &impl Sql,
    account_id: &str,
    rows: &[(CustomerId, &ImportRecord)],
    now: Timestamp,
) -> anyhow::Result<HashSet<String>> {
    let values: Vec<_> = rows
        .iter()
        .map(|(id, record)| record.values(id.as_str()))
        .collect();
    run_import(db, IMPORT_INSERT, account_id, &values, now).context("importing new customers")
}

/// Updates existing customers in bulk; returns the ids actually updated.
pub fn update_imported(
    db: &impl Sql,
    account_id: &str,
    rows: &[(String, &ImportRecord)],
    now: Timestamp,
) -> anyhow::Result<HashSet<String>> {
    let values: Vec<_> = rows.iter().map(|(id, record)| record.values(id)).collect();
    run_import(db, IMPORT_UPDATE, account_id, &values, now).context("updating imported customers")
}

fn run_import(
    db: &impl Sql,
    template: &str,
    account_id: &str,
    rows: &[[Value; IMPORT_COLUMNS]],
    now: Timestamp,
) -> anyhow::Result<HashSet<String>> {
    let mut ids = HashSet::new();
    for chunk in rows.chunks(BULK_ROWS) {
        let sql = template.replace(
            "{rows}",
            &values_placeholders(chunk.len(), IMPORT_COLUMNS, 3),
        );
        let mut params = vec![text(account_id), rfc3339(now)];
        params.extend(chunk.iter().flat_map(|row| row.iter().cloned()));
        let result = db.execute(&sql, &params)?;
        for row in Record::all(&result) {
            ids.insert(row.text("id")?);
        }
    }
    Ok(ids)
}

fn first(result: &spin_sdk::sqlite::QueryResult) -> anyhow::Result<Option<Customer>> {
    Record::all(result)
        .next()
        .map(|row| from_row(&row))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio_platform::migrations::migrate;
    use mio_platform::test_db::TestDb;
    use mio_shared::{CustomerBody, CustomerPatchBody, Limit, Notifications, SearchText};

    const ACCOUNT: &str = "acc_one";
    const OTHER_ACCOUNT: &str = "acc_two";

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("valid")
    }

    fn db() -> TestDb {
        let db = TestDb::new();
        migrate(&db, at("2026-03-01T00:00:00Z")).expect("migrated");
        db
    }

    fn new_customer(json: &str) -> NewCustomer {
        let body: CustomerBody = serde_json::from_str(json).expect("valid json");
        NewCustomer::try_from(body).expect("valid customer")
    }

    fn patch(json: &str) -> CustomerPatch {
        let body: CustomerPatchBody = serde_json::from_str(json).expect("valid json");
        CustomerPatch::try_from(body).expect("valid patch")
    }

    fn add(db: &TestDb, account: &str, n: u8, json: &str) -> Customer {
        let id = CustomerId::from_random(&[n; 16]);
        insert(
            db,
            &Owner::account(account),
            &id,
            &new_customer(json),
            at("2026-03-01T09:30:00Z"),
        )
        .expect("inserted")
        .expect("stored")
    }

    fn search(db: &TestDb, q: &str) -> Vec<String> {
        let query = ListQuery {
            search: SearchText::parse(q).expect("valid"),
            ..ListQuery::default()
        };
        list(db, &Owner::account(ACCOUNT), &query)
            .expect("listed")
            .into_iter()
            .map(|(_, c)| c.name)
            .collect()
    }

    #[test]
    fn an_inserted_customer_reads_back_with_every_field() {
        let db = db();
        let json = r#"{"name": "Ada", "email": "Ada@Example.com", "phone": "+1 416 555 0199",
            "service_address": "1 Main St\nToronto", "billing_address": "PO Box 1",
            "notes": "dog", "notifications": {"sms": false}, "stripe_customer_id": "cus_Abc123"}"#;
        let stored = add(&db, ACCOUNT, 1, json);
        assert_eq!(stored.email.as_deref(), Some("Ada@Example.com"));
        assert_eq!(
            stored.service_address.as_deref(),
            Some("1 Main St\nToronto")
        );
        assert_eq!(
            stored.notifications,
            Notifications {
                email: true,
                sms: false
            }
        );
        assert_eq!(stored.created_at, at("2026-03-01T09:30:00Z"));
        assert_eq!(stored.updated_at, stored.created_at);
        assert_eq!(find(&db, ACCOUNT, &stored.id).expect("read"), Some(stored));
    }

    #[test]
    fn another_accounts_customer_cannot_be_read_changed_or_deleted() {
        let db = db();
        let theirs = add(&db, OTHER_ACCOUNT, 1, r#"{"name": "Theirs"}"#);
        let now = at("2026-03-02T00:00:00Z");
        assert_eq!(find(&db, ACCOUNT, &theirs.id).expect("read"), None);
        assert_eq!(
            update(&db, ACCOUNT, &theirs.id, &patch(r#"{"name": "Mine"}"#), now).expect("ran"),
            None
        );
        assert!(!delete(&db, ACCOUNT, &theirs.id).expect("ran"));
        assert!(
            list(&db, &Owner::account(ACCOUNT), &ListQuery::default())
                .expect("listed")
                .is_empty()
        );
        assert_eq!(
            find(&db, OTHER_ACCOUNT, &theirs.id).expect("read"),
            Some(theirs)
        );
    }

    #[test]
    fn lists_page_in_creation_order_without_gaps_or_repeats() {
        let db = db();
        for n in 1..=5 {
            add(&db, ACCOUNT, n, &format!(r#"{{"name": "Customer {n}"}}"#));
        }
        let limit = Limit::parse("2").expect("valid");
        let mut names = Vec::new();
        let mut cursor = None;
        loop {
            let query = ListQuery {
                search: None,
                limit,
                cursor,
            };
            let page = mio_shared::Page::from_rows(
                list(&db, &Owner::account(ACCOUNT), &query).expect("listed"),
                limit,
            );
            names.extend(page.data.into_iter().map(|c| c.name));
            match page.next_cursor {
                Some(next) => cursor = Some(mio_shared::Cursor::decode(&next).expect("ours")),
                None => break,
            }
        }
        assert_eq!(
            names,
            [
                "Customer 1",
                "Customer 2",
                "Customer 3",
                "Customer 4",
                "Customer 5"
            ]
        );
    }

    #[test]
    fn search_matches_name_email_and_phone_case_insensitively() {
        let db = db();
        add(
            &db,
            ACCOUNT,
            1,
            r#"{"name": "Émile Zola", "email": "emile@novels.fr"}"#,
        );
        add(
            &db,
            ACCOUNT,
            2,
            r#"{"name": "Ada", "email": "ADA@compute.org", "phone": "+1 (416) 555-0199"}"#,
        );
        add(&db, ACCOUNT, 3, r#"{"name": "Grace"}"#);
        assert_eq!(search(&db, "émile"), ["Émile Zola"]);
        assert_eq!(search(&db, "ÉMILE"), ["Émile Zola"]);
        assert_eq!(search(&db, "compute"), ["Ada"]);
        assert_eq!(search(&db, "COMPUTE.ORG"), ["Ada"]);
        assert_eq!(search(&db, "(416) 555"), ["Ada"]);
        assert_eq!(search(&db, "4165550199"), ["Ada"]);
        assert_eq!(search(&db, "nobody"), Vec::<String>::new());
    }

    #[test]
    fn like_wildcards_in_search_text_match_only_themselves() {
        let db = db();
        add(&db, ACCOUNT, 1, r#"{"name": "100% Clean"}"#);
        add(&db, ACCOUNT, 2, r#"{"name": "Ada_Lovelace"}"#);
        add(&db, ACCOUNT, 3, r#"{"name": "Ada Byron"}"#);
        add(&db, ACCOUNT, 4, r#"{"name": "Back\\slash"}"#);
        assert_eq!(search(&db, "%"), ["100% Clean"]);
        assert_eq!(search(&db, "_"), ["Ada_Lovelace"]);
        assert_eq!(search(&db, "ada_"), ["Ada_Lovelace"]);
        assert_eq!(search(&db, "\\"), ["Back\\slash"]);
    }

    #[test]
    fn an_update_sets_clears_and_keeps_fields_as_the_patch_says() {
        let db = db();
        let json =
            r#"{"name": "Ada", "email": "ada@example.com", "phone": "4165550199", "notes": "dog"}"#;
        let before = add(&db, ACCOUNT, 1, json);
        let later = at("2026-03-05T12:00:00Z");
        let after = update(
            &db,
            ACCOUNT,
            &before.id,
            &patch(r#"{"email": null, "notes": "cat", "notifications": {"email": false}}"#),
            later,
        )
        .expect("ran")
        .expect("found");
        assert_eq!(after.name, "Ada");
        assert_eq!(after.email, None);
        assert_eq!(after.phone.as_deref(), Some("4165550199"));
        assert_eq!(after.notes.as_deref(), Some("cat"));
        assert_eq!(
            after.notifications,
            Notifications {
                email: false,
                sms: true
            }
        );
        assert_eq!(after.created_at, before.created_at);
        assert_eq!(after.updated_at, later);
        // The cleared e-mail no longer matches a search; the renamed customer does.
        assert!(search(&db, "example.com").is_empty());
        update(
            &db,
            ACCOUNT,
            &before.id,
            &patch(r#"{"name": "Augusta"}"#),
            later,
        )
        .expect("ran");
        assert_eq!(search(&db, "augusta"), ["Augusta"]);
        assert!(search(&db, "ada").is_empty());
    }

    #[test]
    fn a_deleted_customer_is_gone() {
        let db = db();
        let customer = add(&db, ACCOUNT, 1, r#"{"name": "Ada"}"#);
        assert!(delete(&db, ACCOUNT, &customer.id).expect("ran"));
        assert_eq!(find(&db, ACCOUNT, &customer.id).expect("read"), None);
        assert!(!delete(&db, ACCOUNT, &customer.id).expect("ran"));
    }

    #[test]
    fn sequence_numbers_are_not_reused_after_a_delete() {
        let db = db();
        let first = add(&db, ACCOUNT, 1, r#"{"name": "First"}"#);
        let last = add(&db, ACCOUNT, 2, r#"{"name": "Last"}"#);
        let seq_of_last =
            list(&db, &Owner::account(ACCOUNT), &ListQuery::default()).expect("listed")[1].0;
        assert!(delete(&db, ACCOUNT, &last.id).expect("ran"));
        add(&db, ACCOUNT, 3, r#"{"name": "Newest"}"#);
        let rows = list(&db, &Owner::account(ACCOUNT), &ListQuery::default()).expect("listed");
        assert_eq!(rows[0].1.id, first.id);
        assert!(rows[1].0 > seq_of_last);
    }
}

//! `POST /api/v1/customers/import`: CSV and JSON arrays, partial failure, update by e-mail,
//! and a 10,000-row file in one request.

use crate::bookings::account;
use mio_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn import_csv(app: &TestApp, token: &str, csv: String) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/api/v1/customers/import"))
        .bearer_auth(token)
        .header("content-type", "text/csv; charset=utf-8")
        .body(csv)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json"))
}

async fn all_customers(app: &TestApp, token: &str) -> Vec<Value> {
    let mut customers = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app
            .call(
                Method::GET,
                &format!("/api/v1/customers?limit=200{cursor}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        customers.extend(page["data"].as_array().expect("data").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return customers,
        }
    }
}

fn lines_of(report: &Value) -> Vec<u64> {
    report["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|f| f["line"].as_u64().expect("line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_import_with_bad_rows_keeps_the_good_ones_and_names_the_bad_lines() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    // Header order is free; a quoted field may span lines (line numbers are physical lines).
    let csv = "email,name,notes,phone\r\n\
               ada@example.com,Ada Lovelace,\"Gate code 1234,\r\nring twice\",+1 416 555 0100\r\n\
               not-an-email,Bad Email,,\r\n\
               ,,no name,\r\n\
               grace@example.com,\"Hopper, Grace\",,\r\n\
               too,many,fields,here,really\r\n";
    let (status, report) = import_csv(&app, &token, csv.to_owned()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 2);
    assert_eq!(report["updated"], 0);
    assert_eq!(lines_of(&report), [4, 5, 7]);
    assert_eq!(report["failed"][0]["errors"][0]["field"], "email");
    assert_eq!(report["failed"][1]["errors"][0]["field"], "name");
    assert_eq!(report["failed"][2]["errors"][0]["field"], "row");

    let customers = all_customers(&app, &token).await;
    let names: Vec<&str> = customers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Ada Lovelace", "Hopper, Grace"]);
    assert_eq!(customers[0]["notes"], "Gate code 1234,\r\nring twice");
    assert_eq!(customers[0]["phone"], "+1 416 555 0100");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_a_known_email_updates_that_customer_instead_of_duplicating() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    let (status, existing) = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&token),
            Some(json!({"name": "Ada", "email": "Ada@Example.com", "notes": "keep me"})),
        )
        .await;
    assert_eq!(status, 201);

    let csv = "name,email,phone\n\
               Ada Lovelace,ADA@example.com,416 555 0100\n\
               Grace,grace@example.com,\n\
               Grace Hopper,GRACE@example.com,416 555 0199\n";
    let (status, report) = import_csv(&app, &token, csv.to_owned()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["created"].clone(), report["updated"].clone()),
        (json!(1), json!(2)),
        "{report}"
    );
    assert_eq!(report["failed"], json!([]));

    let customers = all_customers(&app, &token).await;
    assert_eq!(customers.len(), 2);
    assert_eq!(customers[0]["id"], existing["id"]);
    assert_eq!(customers[0]["name"], "Ada Lovelace");
    assert_eq!(customers[0]["phone"], "416 555 0100");
    assert_eq!(
        customers[0]["notes"], "keep me",
        "a column not given is kept"
    );
    assert_eq!(customers[1]["name"], "Grace Hopper", "the later row wins");
    assert_eq!(customers[1]["phone"], "416 555 0199");

    // Importing the same file again changes nothing but counts as updates.
    let (_, again) = import_csv(&app, &token, csv.to_owned()).await;
    assert_eq!(
        (again["created"].clone(), again["updated"].clone()),
        (json!(0), json!(3))
    );
    assert_eq!(all_customers(&app, &token).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_array_import_reports_failures_by_position() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    let (status, report) = app
        .call(
            Method::POST,
            "/api/v1/customers/import",
            Some(&token),
            Some(json!([
                {"name": "Ada", "notifications": {"sms": false}},
                {"name": "Bad", "vip": true},
                "not an object",
                {"name": "Grace", "email": "grace@example.com"}
            ])),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 2);
    assert_eq!(lines_of(&report), [2, 3]);
    assert_eq!(report["failed"][0]["errors"][0]["field"], "vip");
    let customers = all_customers(&app, &token).await;
    assert_eq!(
        customers[0]["notifications"],
        json!({"email": true, "sms": false})
    );

    let (status, problem) = app
        .call(
            Method::POST,
            "/api/v1/customers/import",
            Some(&token),
            Some(json!({"name": "Ada"})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_csv_column_refuses_the_whole_file() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    let (status, problem) =
        import_csv(&app, &token, "name,email,shoe_size\nAda,,42\n".to_owned()).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "header");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("shoe_size")
    );
    assert!(all_customers(&app, &token).await.is_empty());

    let res = app
        .client
        .post(app.url("/api/v1/customers/import"))
        .bearer_auth(&token)
        .header("content-type", "application/xml")
        .body("<customers/>")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_csv_rows_import_in_one_request() {
    let app = TestApp::spawn().await;
    let token = account(&app).await;
    let mut csv = String::from("name,email,phone,service_address,billing_address,notes\n");
    for n in 0..10_000 {
        csv.push_str(&format!(
            "Customer {n},customer{n}@example.com,+1 416 555 {:04},\"{n} Main St, Toronto\",,\"note {n}\"\n",
            n % 10_000
        ));
    }
    assert!(csv.len() < 16 << 20);
    let started = Instant::now();
    let (status, report) = import_csv(&app, &token, csv).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 10_000);
    assert_eq!(report["failed"], json!([]));
    // Well inside the host's default 30 s request limit.
    assert!(took < Duration::from_secs(30), "took {took:?}");

    let (status, page) = app
        .call(
            Method::GET,
            "/api/v1/customers?q=customer9999@example.com",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["data"][0]["name"], "Customer 9999");
    assert_eq!(page["data"][0]["service_address"], "9999 Main St, Toronto");
}

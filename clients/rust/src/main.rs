//! pg_tenant from Rust with tokio-postgres: the per-request pattern and HTTP-style error mapping.
//! Run: cargo run -- "host=127.0.0.1 port=PORT user=client_app dbname=DB"

use serde_json::{json, Value};
use tokio_postgres::{Client, NoTls, Transaction};

/// pg_tenant's SQLSTATEs -> HTTP status codes.
fn status_of(sqlstate: &str) -> Option<u16> {
    Some(match sqlstate {
        "PT010" => 429,
        "PT011" => 402,
        "PT003" => 423,
        "PT001" => 400,
        "PT002" => 404,
        "42501" => 403,
        _ => return None,
    })
}

/// One request: BEGIN; tenant.set_local(tenant); work; COMMIT. Returns (status, body).
async fn handle<F>(client: &mut Client, tenant: Option<&str>, work: F) -> (u16, Value)
where
    F: for<'a> FnOnce(&'a Transaction<'a>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, tokio_postgres::Error>> + 'a>>,
{
    let result = async {
        let tx = client.transaction().await?;
        if let Some(t) = tenant {
            tx.execute("SELECT tenant.set_local($1)", &[&t]).await?;
        }
        let body = work(&tx).await?;
        tx.commit().await?;
        Ok::<_, tokio_postgres::Error>(body)
    }
    .await;
    match result {
        Ok(body) => (200, body),
        Err(e) => {
            let db = e.as_db_error().expect("a database error");
            let code = db.code().code();
            let status = status_of(code).unwrap_or_else(|| panic!("unexpected error: {e}"));
            let mut body = json!({"error": db.message(), "sqlstate": code});
            if code == "PT010" || code == "PT011" {
                // The DETAIL is JSON.
                body["quota"] = serde_json::from_str(db.detail().unwrap_or("null")).expect("JSON detail");
            }
            (status, body)
        }
    }
}

fn list_notes<'a>(tx: &'a Transaction<'a>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, tokio_postgres::Error>> + 'a>> {
    Box::pin(async move {
        let rows = tx.query("SELECT body FROM notes ORDER BY id", &[]).await?;
        Ok(json!(rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>()))
    })
}

fn add_note(body: &'static str) -> impl for<'a> FnOnce(&'a Transaction<'a>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, tokio_postgres::Error>> + 'a>> {
    move |tx| {
        Box::pin(async move {
            let row = tx.query_one("INSERT INTO notes (body) VALUES ($1) RETURNING id", &[&body]).await?;
            Ok(json!({"id": row.get::<_, i32>(0)}))
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dsn = std::env::args().nth(1).expect("connection string");
    let (mut client, connection) = tokio_postgres::connect(&dsn, NoTls).await.expect("connect");
    tokio::spawn(connection);
    let mut failures = 0;
    let mut check = |name: &str, ok: bool| {
        if !ok {
            failures += 1;
        }
        println!("test client-rust: {name} ... {}", if ok { "ok" } else { "FAILED" });
    };
    check("acme starts with no notes", handle(&mut client, Some("acme"), list_notes).await == (200, json!([])));
    check("acme adds a note", handle(&mut client, Some("acme"), add_note("rs 1")).await.0 == 200);
    check("acme sees only its note", handle(&mut client, Some("acme"), list_notes).await == (200, json!(["rs 1"])));
    check("globex sees only its note", handle(&mut client, Some("globex"), list_notes).await == (200, json!(["globex plan"])));
    check("acme's second note fits the quota", handle(&mut client, Some("acme"), add_note("rs 2")).await.0 == 200);
    let (status, body) = handle(&mut client, Some("acme"), add_note("rs 3")).await;
    check(
        "the third is 429 with the quota as JSON",
        status == 429 && body["quota"]["resource"] == "notes" && body["quota"]["limit"] == 2 && body["quota"]["used"] == 2,
    );
    check("a suspended tenant's write is 423", handle(&mut client, Some("initech"), add_note("x")).await.0 == 423);
    check("a request that forgot its tenant is 400", handle(&mut client, None, list_notes).await.0 == 400);
    check("an unknown tenant is 404", handle(&mut client, Some("nope"), list_notes).await.0 == 404);
    std::process::exit(if failures == 0 { 0 } else { 1 });
}

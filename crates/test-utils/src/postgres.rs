//! Databases of their own for tests on the PostgreSQL server of `$POCO_TEST_DATABASE_URL`
//! (default: the local server). Tests that use them are `#[ignore = "needs PostgreSQL"]` and
//! run with `--include-ignored` wherever a server answers; without one they fail rather than
//! pass.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use sqlx::{Connection, Executor};

/// How many databases this process created.
static CREATED: AtomicU64 = AtomicU64::new(0);

/// The server tests create their databases on.
pub fn server_url() -> String {
    std::env::var("POCO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database on the test server, dropped by [`TestDatabase::drop_database`] (a failed
/// test leaves it behind, under a name of its own, for a look).
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    server: String,
    name: String,
}

impl TestDatabase {
    /// Creates a database named after `purpose`, the process, the time and a count. Panics when
    /// the server does not answer within 10 s.
    pub async fn create(purpose: &str) -> Self {
        let server = server_url();
        let mut admin = tokio::time::timeout(Duration::from_secs(10), connect(&server))
            .await
            .expect("PostgreSQL answers within 10 s")
            .expect("PostgreSQL answers at POCO_TEST_DATABASE_URL");
        let stamp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
        // Tests of one process create databases at the same microsecond: the count tells them
        // apart.
        let count = CREATED.fetch_add(1, Ordering::Relaxed);
        let name = format!("poco_{purpose}_{}_{stamp}_{count}", std::process::id());
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("CREATE DATABASE");
        let url = with_database(&server, &name);
        Self { url, server, name }
    }

    /// How many rows `table` holds in the database `<this one>_<suffix>` on the same server
    /// (one a service made beside it, as the devnet does).
    pub async fn rows_beside(&self, suffix: &str, table: &str) -> i64 {
        let url = with_database(&self.server, &format!("{}_{suffix}", self.name));
        let mut connection = connect(&url).await.expect("the database beside answers");
        let query = format!("SELECT COUNT(*) FROM {table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(query))
            .fetch_one(&mut connection)
            .await
            .expect("the table is there")
    }

    /// Drops the databases `<this one>_<suffix>` made beside it, then this one.
    pub async fn drop_with_those_beside(self, suffixes: &[&str]) {
        let mut admin = connect(&self.server).await.expect("PostgreSQL answers");
        for suffix in suffixes {
            let statement = format!("DROP DATABASE IF EXISTS {}_{suffix} WITH (FORCE)", self.name);
            admin.execute(sqlx::AssertSqlSafe(statement)).await.expect("DROP DATABASE");
        }
        self.drop_database().await;
    }

    /// Drops the database, closing whatever is still connected to it.
    pub async fn drop_database(self) {
        let mut admin = connect(&self.server).await.expect("PostgreSQL answers");
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        admin.execute(sqlx::AssertSqlSafe(statement)).await.expect("DROP DATABASE");
    }
}

async fn connect(url: &str) -> Result<sqlx::PgConnection, sqlx::Error> {
    sqlx::PgConnection::connect(url).await
}

/// `url` with its database replaced by `name`, its query kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((url, query)) => (url, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..].find('/').map_or(url.len(), |i| authority_start + i);
    format!("{}/{name}{query}", &url[..authority_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_and_the_query_kept() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}

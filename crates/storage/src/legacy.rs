//! Adopting a database made by a service's legacy migration runner ([`Legacy`]).

use sqlx::{AnyConnection, AssertSqlSafe, Connection as _, migrate::Migrate as _};

use crate::{Legacy, Schema, StorageError};

/// Where sqlx's migrator records the migrations it applied (its default).
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// Puts a database of `legacy`'s runner under sqlx's migrator, once (see [`Legacy`]); does
/// nothing to a database without its version table.
pub(crate) async fn adopt(
    connection: &mut AnyConnection,
    sqlite: bool,
    schema: &Schema,
    legacy: &Legacy,
) -> Result<(), StorageError> {
    if !table_exists(connection, sqlite, legacy.version_table).await? {
        return Ok(());
    }
    // On PostgreSQL, sqlx's migration lock (nothing on SQLite): of instances starting together
    // on a legacy database, one adopts it and the others then find it adopted.
    connection.lock().await?;
    let adopted = async {
        if table_exists(connection, sqlite, MIGRATIONS_TABLE).await? {
            return Ok(());
        }
        let table = legacy.version_table;
        let version: Option<i64> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT MAX(version) FROM {table}")))
                .fetch_one(&mut *connection)
                .await?;
        let version = version.unwrap_or(0) as usize;
        if version > legacy.migrations.len() {
            return Err(StorageError::LegacyVersion {
                service: legacy.service,
                version_table: table,
                recorded: version,
                known: legacy.migrations.len(),
            });
        }
        for (number, migration) in legacy.migrations.iter().enumerate().skip(version) {
            let mut tx = connection.begin().await?;
            for statement in migration.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                sqlx::query(statement).execute(&mut *tx).await?;
            }
            sqlx::query(AssertSqlSafe(format!("INSERT INTO {table} (version) VALUES ($1)")))
                .bind((number + 1) as i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        let migrator = schema.migrator();
        let mut tx = connection.begin().await?;
        tx.ensure_migrations_table(MIGRATIONS_TABLE).await?;
        for migration in migrator.iter().filter(|m| m.version <= legacy.equivalent) {
            tx.skip(MIGRATIONS_TABLE, migration).await?;
        }
        sqlx::query(AssertSqlSafe(format!("DROP TABLE {table}"))).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    let unlocked = connection.unlock().await;
    adopted?;
    Ok(unlocked?)
}

/// Whether `table` exists (where an unqualified name creates it, on PostgreSQL).
async fn table_exists(
    connection: &mut AnyConnection,
    sqlite: bool,
    table: &str,
) -> Result<bool, StorageError> {
    let query = if sqlite {
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
    } else {
        "SELECT COUNT(*) FROM pg_catalog.pg_tables \
         WHERE schemaname = current_schema() AND tablename = $1"
    };
    let count: i64 = sqlx::query_scalar(query).bind(table).fetch_one(connection).await?;
    Ok(count > 0)
}

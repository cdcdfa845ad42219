//! What can go wrong opening or migrating a database.

/// What can go wrong opening or migrating a database.
///
/// Not `#[non_exhaustive]`: each service maps every case onto its own error type, and a new
/// case must be mapped there too.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database failed: connecting, or a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// sqlx's migrator failed, or refused the database (a migration failed, or one recorded as
    /// applied was changed since).
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The legacy version table records more migrations than the service knows: a later
    /// release made the database.
    #[error("{version_table} records {recorded} migrations, this {service} knows {known}")]
    LegacyVersion {
        /// The service ([`Legacy::service`](crate::Legacy::service)).
        service: &'static str,
        /// Its version table.
        version_table: &'static str,
        /// The version the table records.
        recorded: usize,
        /// How many legacy migrations the service knows.
        known: usize,
    },
    /// The SQLite file, or a folder on its path, could not be created private to its owner.
    #[error("database file: {0}")]
    File(#[from] std::io::Error),
}

-- The SMS's schema, the same for SQLite and PostgreSQL: exactly what its two migrations from
-- before sqlx's migrator left, folded in order (the millisecond `request_stamps` gave way to
-- `request_nonces`).
CREATE TABLE secrets (
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, scope, name)
);
CREATE TABLE challenges (
    task_id TEXT PRIMARY KEY,
    deal_id TEXT NOT NULL,
    address TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    worker TEXT NOT NULL,
    nonce TEXT NOT NULL,
    request TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used BIGINT NOT NULL
);
CREATE TABLE quotes (
    digest TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
-- Signed requests are accepted once, by their signing hash, remembered until they go stale
-- (`expires`, unix seconds).
CREATE TABLE request_nonces (
    signer TEXT NOT NULL,
    hash TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (signer, hash)
);
CREATE INDEX request_nonces_by_expiry ON request_nonces (expires);

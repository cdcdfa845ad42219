-- The scheduler's schema, the same for SQLite and PostgreSQL: exactly what its three migrations
-- from before sqlx's migrator left, folded in order (replicas gained `renewed_ms`; the
-- millisecond `request_stamps` and `workers.last_request_ms` gave way to `request_nonces`).
CREATE TABLE checkpoint (
    name TEXT PRIMARY KEY,
    next_block BIGINT NOT NULL
);
CREATE TABLE deals (
    deal_id TEXT PRIMARY KEY,
    deal TEXT NOT NULL,
    params TEXT NOT NULL
);
CREATE TABLE tasks (
    task_id TEXT PRIMARY KEY,
    deal_id TEXT NOT NULL,
    idx TEXT NOT NULL,
    stage TEXT NOT NULL,
    initialized BIGINT NOT NULL,
    consensus TEXT,
    uploader TEXT,
    upload_asked_ms BIGINT NOT NULL,
    location TEXT,
    callback_data TEXT,
    result_digest TEXT,
    final_deadline BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX tasks_by_stage ON tasks (stage, final_deadline);
CREATE TABLE replicas (
    task_id TEXT NOT NULL,
    worker TEXT NOT NULL,
    state TEXT NOT NULL,
    result_hash TEXT,
    assigned_ms BIGINT NOT NULL,
    renewed_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, worker)
);
CREATE INDEX replicas_by_worker ON replicas (worker, state);
CREATE TABLE workers (
    address TEXT PRIMARY KEY,
    slots BIGINT NOT NULL,
    tee BIGINT NOT NULL,
    version TEXT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
CREATE TABLE task_logs (
    task_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX task_logs_by_task ON task_logs (task_id, at_ms);
-- Signed requests are stamped in seconds and carry a nonce: each is accepted once, by its
-- signing hash, remembered until it goes stale (`expires`, unix seconds).
CREATE TABLE request_nonces (
    worker TEXT NOT NULL,
    hash TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (worker, hash)
);
CREATE INDEX request_nonces_by_expiry ON request_nonces (expires);

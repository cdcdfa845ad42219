-- Several scheduler processes of one pool may share a PostgreSQL database: one of them is
-- active, the holder of the pool's lease until `expires_ms` (the database's clock, unix
-- milliseconds), renewed while it lives. `token` grows by one at each acquisition: every
-- state-changing write of the active instance is made only while the lease still carries its
-- token, so that an instance that lost the lease cannot change anything.
CREATE TABLE scheduler_lease (
    workerpool TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    holder_url TEXT NOT NULL,
    token BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);

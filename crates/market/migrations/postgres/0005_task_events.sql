-- The lifecycle of tasks as the chain's events tell it, for the pages that show a task's
-- timeline, its contributions and the contributors' outcomes: one row per event, in chain
-- order. Rows of replaced blocks go with a rollback (by block); a re-sync starts them again.
CREATE TABLE task_events (
    block        BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    tx_hash      BYTEA NOT NULL,
    task_id      BYTEA NOT NULL,
    kind         BIGINT NOT NULL,    -- crate::model::TaskEventKind
    account      BYTEA,                 -- the workerpool (initialize) or the worker it names
    word         BYTEA,                 -- result hash, consensus, digest or reward (32 bytes)
    results      BYTEA,                 -- the result location of a finalize
    PRIMARY KEY (block, log_index)
);
CREATE INDEX task_events_task ON task_events (task_id);
CREATE INDEX task_events_account ON task_events (account);

-- The lifecycle of tasks as the chain's events tell it, for the pages that show a task's
-- timeline, its contributions and the contributors' outcomes: one row per event, in chain
-- order. Rows of replaced blocks go with a rollback (by block); a re-sync starts them again.
CREATE TABLE task_events (
    block        INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    tx_hash      BLOB NOT NULL,
    task_id      BLOB NOT NULL,
    kind         INTEGER NOT NULL,   -- crate::model::TaskEventKind
    account      BLOB,                 -- the workerpool (initialize) or the worker it names
    word         BLOB,                 -- result hash, consensus, digest or reward (32 bytes)
    results      BLOB,                 -- the result location of a finalize
    PRIMARY KEY (block, log_index)
);
CREATE INDEX task_events_task ON task_events (task_id);
CREATE INDEX task_events_account ON task_events (account);

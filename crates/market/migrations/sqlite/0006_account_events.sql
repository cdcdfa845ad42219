-- What the chain's events say happened to accounts beside tasks: deposits and withdrawals,
-- workerpool memberships, bonds released; for the pages that show an account's history (its
-- contributions are in task_events, by account). Rows of replaced blocks go with a rollback
-- (by block); a re-sync starts them again.
CREATE TABLE account_events (
    block        INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    tx_hash      BLOB NOT NULL,
    account      BLOB NOT NULL,
    kind         INTEGER NOT NULL,   -- crate::model::AccountEventKind
    workerpool   BLOB,            -- the workerpool of a membership or a bond
    amount       BLOB,            -- the amount moved, a 32-byte big-endian word
    PRIMARY KEY (block, log_index)
);
CREATE INDEX account_events_account ON account_events (account, block, log_index);

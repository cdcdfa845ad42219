-- Workers' scores over time: read from the chain (viewScore) at the last block of each batch
-- whose events proved a worker right or wrong. Rows of replaced blocks go with a rollback (by
-- block); a re-sync starts them again.
CREATE TABLE worker_scores (
    account  BLOB NOT NULL,
    block    INTEGER NOT NULL,
    score    INTEGER NOT NULL,
    PRIMARY KEY (account, block)
);
CREATE INDEX worker_scores_block ON worker_scores (block);

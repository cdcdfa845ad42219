-- Workers' scores over time: read from the chain (viewScore) at the last block of each batch
-- whose events proved a worker right or wrong. Rows of replaced blocks go with a rollback (by
-- block); a re-sync starts them again.
CREATE TABLE worker_scores (
    account  BYTEA NOT NULL,
    block    BIGINT NOT NULL,
    score    BIGINT NOT NULL,
    PRIMARY KEY (account, block)
);
CREATE INDEX worker_scores_block ON worker_scores (block);

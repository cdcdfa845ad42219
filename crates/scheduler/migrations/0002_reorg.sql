-- Chain reorganisations: what the scheduler needs to find the blocks the chain replaced and to
-- bring its deals and tasks back to the state of the block before them.

-- The last blocks of the last batches applied (number, hash), checked against the chain.
CREATE TABLE chain_blocks (
    number BIGINT PRIMARY KEY,
    hash TEXT NOT NULL
);

-- The block of a deal's `DealCreated` (0 for deals followed before this migration: older than
-- any fork point).
ALTER TABLE deals ADD COLUMN block BIGINT NOT NULL DEFAULT 0;
CREATE INDEX deals_by_block ON deals (block);

-- The newest block of a change the chain made to a task (its events, and the scheduler's own
-- transactions for it): a reorganisation from that block or an earlier one undoes it.
ALTER TABLE tasks ADD COLUMN chain_block BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tasks_by_chain_block ON tasks (chain_block);

-- The chain's events of each task, in chain order, kept until the task is over and older than
-- the recent blocks: undoing a task's replaced events is setting it back to its deal's start and
-- applying again those that were not replaced. `worker` is '' for an event that names none,
-- `value` the result hash, consensus or digest an event carries ('' for none).
CREATE TABLE task_events (
    task_id TEXT NOT NULL,
    block BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    worker TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (task_id, block, log_index, worker)
);
CREATE INDEX task_events_by_block ON task_events (block);

-- Tasks followed before this migration have no events recorded: what the chain had made of them
-- so far becomes their first entry, at block 0, before any fork point.
INSERT INTO task_events (task_id, block, log_index, worker, kind, value)
SELECT task_id, 0, 0, '', 'base',
       stage || ' ' || initialized || ' ' || COALESCE(consensus, '-') || ' '
           || COALESCE(result_digest, '-')
FROM tasks;
INSERT INTO task_events (task_id, block, log_index, worker, kind, value)
SELECT task_id, 0, 1, worker, 'base_replica', state || ' ' || COALESCE(result_hash, '-')
FROM replicas WHERE state IN ('contributed', 'revealed', 'rejected');

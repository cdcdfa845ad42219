-- The task index: which deal a task belongs to, and its index in the deal, for the first
-- tasks of each deal (at most `store::TASKS_INDEXED_PER_DEAL`; a deal's later tasks, and the
-- tasks of deals indexed before this migration, are not here, and clients find them on the
-- chain). Written with the deal; deleted with it.
CREATE TABLE deal_tasks (
    task_id  BLOB PRIMARY KEY,
    deal_id  BLOB NOT NULL REFERENCES deals (deal_id) ON DELETE CASCADE,
    idx      BLOB NOT NULL   -- the task's index, a 32-byte big-endian word
);
CREATE INDEX deal_tasks_deal ON deal_tasks (deal_id);

-- A worker hands back at once a task it cannot keep (its disk is full, say): its replica becomes
-- `released`, and the task goes to the next worker that asks. The chain takes at most one
-- contribution of a worker per task, so a replica stays one row per task and worker: a released
-- row is handed out again to its worker later (after `released_ms`, a few times at most:
-- `hand_backs` counts them).
ALTER TABLE replicas ADD COLUMN hand_backs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE replicas ADD COLUMN released_ms BIGINT NOT NULL DEFAULT 0;

-- Why a worker said in its last heartbeat that it takes no new work (JSON), NULL when healthy.
ALTER TABLE workers ADD COLUMN unhealthy TEXT;

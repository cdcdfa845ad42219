-- A workerpool's membership events, for the members its page lists.
CREATE INDEX account_events_workerpool ON account_events (workerpool, block, log_index);

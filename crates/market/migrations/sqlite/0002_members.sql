-- Workerpools: how many members their active set holds, the members a committee deal matched
-- now would be drawn from (the best match proposes no pool too small for a committee).
ALTER TABLE assets ADD COLUMN active_members INTEGER NOT NULL DEFAULT 0;

-- Chain reorganisations: what the follower needs to find the blocks the chain replaced and to
-- bring the mirror, the book and the deals back to the state of the block before them.

-- The last blocks of the last batches applied (number, hash), checked against the chain.
CREATE TABLE chain_blocks (
    number  INTEGER PRIMARY KEY,
    hash    BLOB NOT NULL
);

-- The block of the last change the chain made to a mirrored row (0 for rows written before
-- this migration: older than any fork point), and when an order was closed on-chain.
ALTER TABLE consumed ADD COLUMN block INTEGER NOT NULL DEFAULT 0;
ALTER TABLE consumed ADD COLUMN closed_block INTEGER;
ALTER TABLE assets ADD COLUMN block INTEGER NOT NULL DEFAULT 0;
ALTER TABLE categories ADD COLUMN block INTEGER NOT NULL DEFAULT 0;
-- The block of the chain's change that gave an order its status (filled, cancelled, dead); NULL
-- for a status its owner gave it (open, unpublished).
ALTER TABLE orders ADD COLUMN chain_block INTEGER;

CREATE INDEX consumed_block ON consumed (block);
CREATE INDEX assets_block ON assets (block);
CREATE INDEX accounts_as_of ON accounts (as_of);
CREATE INDEX orders_chain_block ON orders (chain_block) WHERE chain_block IS NOT NULL;

-- The orderbook, the chain mirror it is checked against, deals, and the follower's checkpoint.
-- Amounts are 32-byte big-endian BYTEA: PostgreSQL compares BYTEA byte by byte, so comparing and
-- ordering them is comparing and ordering the numbers. Addresses are 20-byte BYTEA, hashes
-- 32-byte BYTEA. Tags are four 64-bit words, least significant first.

CREATE TABLE orders (
    hash          BYTEA PRIMARY KEY,
    kind          BIGINT NOT NULL,  -- 0 app, 1 dataset, 2 workerpool, 3 request
    status        BIGINT NOT NULL,  -- 0 open, 1 filled, 2 cancelled, 3 dead, 4 unpublished
    owner         BYTEA NOT NULL,     -- signer: the asset's owner at publication, or the requester
    asset         BYTEA NOT NULL,     -- app, dataset, workerpool; the app of a request
    app           BYTEA NOT NULL,     -- role columns: the asset itself or a restriction
    dataset       BYTEA NOT NULL,
    workerpool    BYTEA NOT NULL,
    requester     BYTEA NOT NULL,
    price         BYTEA NOT NULL,     -- sort key: price, or NOT workerpoolmaxprice for requests
    volume        BYTEA NOT NULL,
    remaining     BYTEA NOT NULL,
    category      BIGINT NOT NULL,
    trust         BIGINT NOT NULL,  -- clamped to 2^63 - 1
    tag0          BIGINT NOT NULL,
    tag1          BIGINT NOT NULL,
    tag2          BIGINT NOT NULL,
    tag3          BIGINT NOT NULL,
    sign_kind     BIGINT NOT NULL,  -- 0 eoa, 1 contract (ERC-1271), 2 presigned
    published_at  BIGINT NOT NULL,  -- ms since the epoch
    updated_at    BIGINT NOT NULL,
    reason        TEXT,
    body          TEXT NOT NULL      -- the signed order as published (JSON)
);
CREATE INDEX orders_book ON orders (kind, price, published_at, hash) WHERE status = 0;
CREATE INDEX orders_asset ON orders (kind, asset, price, published_at, hash) WHERE status = 0;
CREATE INDEX orders_category ON orders (kind, category, price, published_at, hash) WHERE status = 0;
CREATE INDEX orders_owner ON orders (owner, kind, status);

-- Registry mirror: every asset ever created, its owner and (workerpools) its policy.
CREATE TABLE assets (
    asset                  BYTEA PRIMARY KEY,
    kind                   BIGINT NOT NULL,  -- 0 app, 1 dataset, 2 workerpool
    owner                  BYTEA NOT NULL,
    worker_stake_ratio     BIGINT NOT NULL,
    scheduler_reward_ratio BIGINT NOT NULL
);

-- Mirror of Poco's consumed volumes: every order hash ever matched or closed.
CREATE TABLE consumed (
    hash    BYTEA PRIMARY KEY,
    amount  BYTEA NOT NULL,
    closed  BIGINT NOT NULL
);

-- Free balances, as read from the chain at block as_of.
CREATE TABLE accounts (
    address  BYTEA PRIMARY KEY,
    balance  BYTEA NOT NULL,
    as_of    BIGINT NOT NULL
);

CREATE TABLE categories (
    id       BIGINT PRIMARY KEY,
    timeref  BIGINT NOT NULL
);

CREATE TABLE deals (
    deal_id         BYTEA PRIMARY KEY,
    block           BIGINT NOT NULL,
    log_index       BIGINT NOT NULL,
    app             BYTEA NOT NULL,
    dataset         BYTEA NOT NULL,
    workerpool      BYTEA NOT NULL,
    requester       BYTEA NOT NULL,
    beneficiary     BYTEA NOT NULL,
    sponsor         BYTEA NOT NULL,
    app_owner       BYTEA NOT NULL,
    dataset_owner   BYTEA NOT NULL,
    scheduler       BYTEA NOT NULL,
    category        BIGINT NOT NULL,
    request_hash    BYTEA NOT NULL,
    body            TEXT NOT NULL
);
CREATE INDEX deals_position ON deals (block, log_index);
CREATE INDEX deals_requester ON deals (requester, block, log_index);
CREATE INDEX deals_app ON deals (app, block, log_index);
CREATE INDEX deals_dataset ON deals (dataset, block, log_index);
CREATE INDEX deals_workerpool ON deals (workerpool, block, log_index);
CREATE INDEX deals_scheduler ON deals (scheduler, block, log_index);

-- Unpublish authorizations already used, kept until they expire.
CREATE TABLE used_authorizations (
    digest  BYTEA PRIMARY KEY,
    expiry  BIGINT NOT NULL
);

CREATE TABLE follower (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    next_block  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Events for the WebSocket clients of every instance: written in the transaction of their
-- effects, announced by NOTIFY poco_market_events with their ids, pruned after an hour.
CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX events_created ON events (created_at);

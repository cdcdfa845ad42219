-- The orderbook, the chain mirror it is checked against, deals, and the follower's checkpoint.
-- Amounts are 32-byte big-endian BLOBs: SQLite compares BLOBs with memcmp, so comparing and
-- ordering them is comparing and ordering the numbers. Addresses are 20-byte BLOBs, hashes
-- 32-byte BLOBs. Tags are four 64-bit words, least significant first.

CREATE TABLE orders (
    hash          BLOB PRIMARY KEY,
    kind          INTEGER NOT NULL,  -- 0 app, 1 dataset, 2 workerpool, 3 request
    status        INTEGER NOT NULL,  -- 0 open, 1 filled, 2 cancelled, 3 dead, 4 unpublished
    owner         BLOB NOT NULL,     -- signer: the asset's owner at publication, or the requester
    asset         BLOB NOT NULL,     -- app, dataset, workerpool; the app of a request
    app           BLOB NOT NULL,     -- role columns: the asset itself or a restriction
    dataset       BLOB NOT NULL,
    workerpool    BLOB NOT NULL,
    requester     BLOB NOT NULL,
    price         BLOB NOT NULL,     -- sort key: price, or NOT workerpoolmaxprice for requests
    volume        BLOB NOT NULL,
    remaining     BLOB NOT NULL,
    category      INTEGER NOT NULL,
    trust         INTEGER NOT NULL,  -- clamped to 2^63 - 1
    tag0          INTEGER NOT NULL,
    tag1          INTEGER NOT NULL,
    tag2          INTEGER NOT NULL,
    tag3          INTEGER NOT NULL,
    sign_kind     INTEGER NOT NULL,  -- 0 eoa, 1 contract (ERC-1271), 2 presigned
    published_at  INTEGER NOT NULL,  -- ms since the epoch
    updated_at    INTEGER NOT NULL,
    reason        TEXT,
    body          TEXT NOT NULL      -- the signed order as published (JSON)
);
CREATE INDEX orders_book ON orders (kind, price, published_at, hash) WHERE status = 0;
CREATE INDEX orders_asset ON orders (kind, asset, price, published_at, hash) WHERE status = 0;
CREATE INDEX orders_category ON orders (kind, category, price, published_at, hash) WHERE status = 0;
CREATE INDEX orders_owner ON orders (owner, kind, status);

-- Registry mirror: every asset ever created, its owner and (workerpools) its policy.
CREATE TABLE assets (
    asset                  BLOB PRIMARY KEY,
    kind                   INTEGER NOT NULL,  -- 0 app, 1 dataset, 2 workerpool
    owner                  BLOB NOT NULL,
    worker_stake_ratio     INTEGER NOT NULL,
    scheduler_reward_ratio INTEGER NOT NULL
);

-- Mirror of Poco's consumed volumes: every order hash ever matched or closed.
CREATE TABLE consumed (
    hash    BLOB PRIMARY KEY,
    amount  BLOB NOT NULL,
    closed  INTEGER NOT NULL
);

-- Free balances, as read from the chain at block as_of.
CREATE TABLE accounts (
    address  BLOB PRIMARY KEY,
    balance  BLOB NOT NULL,
    as_of    INTEGER NOT NULL
);

CREATE TABLE categories (
    id       INTEGER PRIMARY KEY,
    timeref  INTEGER NOT NULL
);

CREATE TABLE deals (
    deal_id         BLOB PRIMARY KEY,
    block           INTEGER NOT NULL,
    log_index       INTEGER NOT NULL,
    app             BLOB NOT NULL,
    dataset         BLOB NOT NULL,
    workerpool      BLOB NOT NULL,
    requester       BLOB NOT NULL,
    beneficiary     BLOB NOT NULL,
    sponsor         BLOB NOT NULL,
    app_owner       BLOB NOT NULL,
    dataset_owner   BLOB NOT NULL,
    scheduler       BLOB NOT NULL,
    category        INTEGER NOT NULL,
    request_hash    BLOB NOT NULL,
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
    digest  BLOB PRIMARY KEY,
    expiry  INTEGER NOT NULL
);

CREATE TABLE follower (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    next_block  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

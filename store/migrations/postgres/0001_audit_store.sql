-- The audit store on PostgreSQL (docs/adr/*-audit-store-postgresql.md says why so).
--
-- events: one row per stored event, range-partitioned by month on its event time
-- (occurred_at_us, microseconds since the epoch) so retention drops whole months. Months are
-- created on demand between 2000 and 2100; any other time lands in events_other, whose CHECK
-- lets PostgreSQL create a month without scanning it. Every key and every query starts with
-- account_id, so the tables can be distributed by account (Citus) without changing a query.
-- Text columns compare byte-wise (COLLATE "C"): pages and cursors follow the same order as
-- Python strings and the SQLite backend.

CREATE TABLE events (
    account_id text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    event_id text COLLATE "C" NOT NULL,
    occurred_at_us bigint NOT NULL,
    category text COLLATE "C" NOT NULL,
    activity text COLLATE "C" NOT NULL,
    actor_user_id text COLLATE "C" NOT NULL,
    actor_email text COLLATE "C",
    resource_type text COLLATE "C",
    resource_id text COLLATE "C",
    outcome text COLLATE "C" NOT NULL,
    ip text COLLATE "C",
    search tsvector NOT NULL DEFAULT '',
    canonical bytea NOT NULL,
    prev_hash text COLLATE "C" NOT NULL,
    hash text COLLATE "C" NOT NULL,
    -- The keyset order of every page. A unique key of a partitioned table must hold the
    -- partition key; uniqueness of (account_id, event_id) alone is kept by append, which
    -- looks ids up under the account's chain lock.
    PRIMARY KEY (account_id, occurred_at_us, event_id)
) PARTITION BY RANGE (occurred_at_us);

CREATE TABLE events_other PARTITION OF events DEFAULT;
ALTER TABLE events_other ADD CONSTRAINT events_other_outside_months
    CHECK (occurred_at_us < 946684800000000 OR occurred_at_us >= 4102444800000000);

-- Each partition gets these (PostgreSQL creates them on every month it adds).
CREATE INDEX events_event_id ON events (account_id, event_id);
CREATE INDEX events_seq ON events (account_id, seq) INCLUDE (occurred_at_us);
CREATE INDEX events_actor ON events (account_id, actor_user_id, occurred_at_us, event_id);
CREATE INDEX events_actor_email ON events (account_id, actor_email, occurred_at_us, event_id);
CREATE INDEX events_activity
    ON events (account_id, category, activity, occurred_at_us, event_id);
CREATE INDEX events_resource
    ON events (account_id, resource_type, resource_id, occurred_at_us, event_id);
CREATE INDEX events_ip ON events (account_id, ip, occurred_at_us, event_id);
CREATE INDEX events_search ON events USING gin (search);

-- Each account's chain head (last seq and hash) and where its chain starts once retention
-- removed a prefix. Appends lock the account's row (SELECT ... FOR UPDATE) to assign seq, so
-- commit order is seq order.
CREATE TABLE account_chains (
    account_id text COLLATE "C" PRIMARY KEY,
    last_seq bigint NOT NULL,
    last_hash text COLLATE "C" NOT NULL,
    start_seq bigint NOT NULL,
    start_hash text COLLATE "C" NOT NULL
);

CREATE TABLE retention_overrides (
    account_id text COLLATE "C" PRIMARY KEY,
    days integer NOT NULL CHECK (days > 0)
);

-- Free text searched within one account: the GIN index holds account_id beside the tsvector
-- (btree_gin, a trusted extension the database owner may create), so a common word is looked
-- up in the account's rows only instead of every account's, then filtered.
CREATE EXTENSION IF NOT EXISTS btree_gin;
DROP INDEX events_search;
CREATE INDEX events_search ON events USING gin (account_id, search);

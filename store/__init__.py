"""The activity audit log store: the searchable history of every account's events (SQLite by
default, PostgreSQL for deployments that outgrow one machine), its indexer and its retention."""

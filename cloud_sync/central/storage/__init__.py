"""Central's storage backends (SQLite, the default, and PostgreSQL) behind one interface."""

"""A private, real PostgreSQL for tests: see ``cloud_sync.central.storage.local_pg`` (the demo
uses the same code).

    with start_postgres() as pg:           # initdb + pg_ctl start on a free port
        url = pg.create_database()         # a fresh, empty database per test: postgresql://...
"""

from __future__ import annotations

from cloud_sync.central.storage.local_pg import PG_BIN, Postgres, start_postgres

__all__ = ["PG_BIN", "Postgres", "start_postgres"]

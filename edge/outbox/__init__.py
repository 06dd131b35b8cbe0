"""The durable outbox: SQLite (WAL) store-and-forward with an event lane and a telemetry lane.

``Outbox`` (``edge.outbox.store``) is what the daemon uses; it also satisfies
``cloud_sync.ports.BatchStore`` for the uplink. ``read_stats`` (``edge.outbox.stats``) reads a
database read-only, for ``gatehouse buffer stats`` while the daemon runs.
"""

from edge.outbox.store import Outbox

__all__ = ["Outbox"]

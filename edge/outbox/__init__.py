"""The durable outbox: SQLite (WAL) store-and-forward with an event lane and a telemetry lane.

``Outbox`` (``edge.outbox.store``) is what the daemon uses; it also satisfies
``cloud_sync.ports.BatchStore`` for the uplink. ``edge.outbox.stats.read_stats`` reads a
database read-only, for ``gatehouse buffer stats`` while the daemon runs.

Modules: ``store`` (the async front: queue, writer task, database thread), ``db`` (the
synchronous core on that thread), ``batches`` (what a seal takes), ``quota`` (sizes, eviction),
``schema`` (row encoding), ``migrations`` (versioned schema), ``seqmark`` (the sequence
high-water side file), ``stats`` (read-only statistics).
"""

from edge.outbox.store import Outbox

__all__ = ["Outbox"]

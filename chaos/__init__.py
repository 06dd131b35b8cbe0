"""The chaos harness: faults injected into the real parts, and a ledger of what survived.

Every scenario runs the real thing: Mosquitto with the project's TLS/ACL configuration, central
(``gatehouse central``) and the gateway (``gatehouse run``) as processes, the Modbus simulators
(``gatehouse simulate``). A fault is injected (kill -9, an outage, a partition, a full disk, a
clock step, a misbehaving device), the devices are stopped, the gateway drains, and the
:mod:`chaos.ledger` compares what the gateway committed with what central stored.

``python -m chaos`` (``make chaos``) runs every scenario and prints the table; the bounded subset
in ``tests/chaos/`` runs the same scenarios with short durations. See docs/reliability.md.
"""

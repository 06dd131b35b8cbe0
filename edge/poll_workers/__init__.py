"""Polling in worker processes (``gateway.poll_workers: N``), so a busy site uses more than one
core: each worker runs the coordinators of whole buses and streams samples and events to the
main process, which keeps the live state, the rules, the outbox, the uplink and the dashboard.
See docs/architecture.md, "Past one core"."""

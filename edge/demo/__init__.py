"""`make demo`: the whole system on one machine — credentials, a derived site file, the broker,
the simulators, central and the gateway as child processes (``python -m edge.demo``).

``command`` (the command), ``layout`` (folders and ports), ``pki`` (credentials), ``site`` (the
derived site file and central.yaml), ``procs`` (child processes), ``report`` (what is printed).
"""

from edge.demo.command import DemoOptions, dashboard_available, main, run_demo

__all__ = ["DemoOptions", "dashboard_available", "main", "run_demo"]

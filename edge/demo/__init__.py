"""`make demo`: the whole system on one machine — credentials, a derived site file, the broker,
the simulators, central and the gateway as child processes (``python -m edge.demo``).

``main`` (the command), ``layout`` (folders and ports), ``pki`` (credentials), ``site`` (the
derived site file and central.yaml), ``procs`` (child processes), ``report`` (what is printed).
"""

from edge.demo.main import DemoOptions, dashboard_available, main, run_demo

__all__ = ["DemoOptions", "dashboard_available", "main", "run_demo"]

"""The rules engine in the daemon: the site's rules compiled for ``rules/`` (``site``), the
runtime that feeds it samples and runs linkage writes through the coordinators (``runtime``),
its SQLite store of snapshot, history and linkage log (``store``), and the read models the
dashboard shows (``views``). ``rules/`` itself stays pure; this package is its I/O.
"""

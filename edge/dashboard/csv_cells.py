"""Spreadsheet-safe CSV cells (issue 17, item 7).

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some
spreadsheets skip before looking for those) is run as a formula when the export is opened in
Excel or LibreOffice, so a device name, comment or alarm text typed on the dashboard could make
the duty officer's PC fetch a URL or run a command. Such cells are prefixed with ``'``, which
the spreadsheet shows as plain text. Numbers stay numbers: ``-3.5`` cannot be a formula.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["safe_cell", "safe_row"]

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if not isinstance(value, str) or not value.startswith(_TRIGGERS):
        return value
    try:
        if math.isfinite(float(value)):
            return value  # a plain number such as -3.5 or +1e3
    except ValueError:
        pass
    return "'" + value


def safe_row(values: list[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]

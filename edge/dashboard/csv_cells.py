"""Spreadsheet-safe CSV cells (issue 17, item 7).

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some
spreadsheets skip before looking for those) is run as a formula when the export is opened in
Excel or LibreOffice, so a device name, comment or alarm text typed on the dashboard could make
the duty officer's PC fetch a URL or run a command. Such cells are prefixed with ``'``, which
the spreadsheet shows as plain text. Numbers stay numbers: ``-3.5`` cannot be a formula.

A sheet that is read back (``gatehouse import``) needs the escape to be reversible, so a text
that already starts with quotes before a trigger (``'=x``) gets one more quote too:
:func:`unescape_cell` removes exactly one quote from a cell that :func:`safe_cell` could have
written, and ``unescape_cell(safe_cell(s)) == s`` for every text.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["safe_cell", "safe_row", "unescape_cell"]

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _needs_quote(text: str) -> bool:
    bare = text.lstrip("'")
    return bare.startswith(_TRIGGERS) and not (bare is text and _is_number(text))


def safe_cell(value: Any) -> Any:
    if not isinstance(value, str) or not _needs_quote(value):
        return value
    return "'" + value


def safe_row(values: list[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]


def unescape_cell(cell: str) -> str:
    """The text :func:`safe_cell` was given for ``cell`` (a cell it left alone comes back as is)."""
    if cell.startswith("'") and _needs_quote(cell[1:]):
        return cell[1:]
    return cell

"""A small reader of a text/event-stream response for the tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """Yield (event, parsed data) for each event of the stream; comments are skipped."""
    event, data = "message", list[str]()
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


async def next_event(stream: AsyncIterator[tuple[str, Any]], kind: str) -> Any:
    async for event, data in stream:
        if event == kind:
            return data
    raise AssertionError(f"the stream ended before a {kind!r} event")

"""``Outbox``: the gateway's durable store-and-forward buffer, as an async context manager.

Writers (``put_sample``, ``put_samples``, ``put_event``) append to a bounded in-memory queue and
return at once; ONE writer task takes up to ``commit_batch`` records at a time (or whatever has
arrived after ``commit_interval_ms``, or at once when someone is waiting in ``flush``) and
commits them in one transaction on a dedicated database thread. ``flush()`` returns when
everything put before it is committed. Batch sealing, pending, acknowledge and backlog run on
the same thread, so they are serialised with the writes without any lock.

The queue bound counts *records*, not calls: a ``put_samples`` of 10,000 samples takes 10,000
places. When it is full, callers wait (backpressure reaches the pollers). When the database
cannot be written (disk full, I/O error) the writer keeps its batch in memory and retries with
capped, jittered backoff; ``flush`` raises ``StorageError`` meanwhile, and a caller that finds
the queue full while the store is failing gets ``StorageError`` instead of waiting forever.

Durability. The database runs in WAL mode. With ``synchronous="normal"`` (the default) a commit
has been written into the WAL file — in the operating system's page cache — when it returns:
it survives the gateway process being killed (``kill -9``, OOM killer, a crash), because the
kernel still writes the file out. It does *not* survive a power cut or kernel panic in the last
moments before the next checkpoint's fsync: up to a second or so of the newest commits can be
lost, never the database's integrity. ``synchronous="full"`` fsyncs the WAL on every commit and
also survives power loss, at the price of one fsync per group commit (on an SD card: tens of
milliseconds; group commits keep that affordable but not free). Gateways with a UPS or a
journaling industrial flash can keep ``normal``; others choose ``full`` in the site file.

Quota. See ``edge.outbox.quota``: old telemetry (rows, then sealed telemetry batches, oldest
first) is evicted with one ``outbox.gap`` event per round; events never are. If events alone
fill the quota, telemetry is refused (``QuotaExceeded``) and one ``system.alarm`` event
(``code: outbox_full, active: true``) is stored; ``active: false`` follows when acknowledged
batches have freed space below 90 % of the quota.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import structlog

from cloud_sync.ports import Lane, SealedBatch, Sealer, SealMode
from core.errors import QuotaExceeded, StorageError
from core.model import Clock, Event, Sample, SystemClock
from edge.outbox.db import LIVE_TAIL_ROWS, DbOptions, EncodedEvent, OutboxDb, pack_event_data

__all__ = ["Outbox"]

_LOG = structlog.get_logger(__name__)

T = TypeVar("T")

_RETRY_FIRST_S = 0.05
_RETRY_MAX_S = 2.0
# On shutdown a failing disk gets this many more attempts before the queued rows are given up.
_CLOSE_ATTEMPTS = 5


class Outbox:
    def __init__(
        self,
        path: Path | str,
        *,
        quota_bytes: int = 2_000_000_000,
        queue_size: int = 50_000,
        commit_interval_ms: int = 100,
        commit_batch: int = 5_000,
        clock: Clock | None = None,
        live_window_s: float = 10.0,
        synchronous: Literal["normal", "full"] = "normal",
        seq_block: int = 1000,
        max_page_count: int | None = None,
        live_tail_rows: int = LIVE_TAIL_ROWS,
    ) -> None:
        if queue_size < 1 or commit_batch < 1:
            raise ValueError("queue_size and commit_batch must be at least 1")
        self.path = Path(path)
        self._clock: Clock = clock or SystemClock()
        self._options = DbOptions(
            quota_bytes=quota_bytes,
            live_window_s=live_window_s,
            synchronous=synchronous,
            seq_block=seq_block,
            max_page_count=max_page_count,
            live_tail_rows=live_tail_rows,
        )
        self._queue_size = queue_size
        self._commit_interval_s = commit_interval_ms / 1000.0
        self._commit_batch = commit_batch
        self._db = OutboxDb(self.path, self._options, self._clock)
        self._executor: ThreadPoolExecutor | None = None
        self._stack = contextlib.AsyncExitStack()
        self._writer: asyncio.Task[None] | None = None
        # The queue: entries are single samples, lists of samples, or encoded events.
        self._entries: deque[Sample | Sequence[Sample] | EncodedEvent] = deque()
        self._queued = 0
        self._enqueued_total = 0
        self._committed_total = 0
        self._has_data = asyncio.Event()
        self._wake = asyncio.Event()  # a full batch, a flush or close: commit without waiting
        self._space = asyncio.Event()
        self._flushers: list[tuple[int, asyncio.Future[None]]] = []
        self._closing = False
        self._failure: StorageError | None = None
        self._refused = False
        self.commits = 0  # group commits done: records / commits is the grouping achieved

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Outbox:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-db")
        try:
            await self._run(self._db.open)
        except BaseException:
            self._executor.shutdown(wait=True)
            raise
        self._refused = self._db.refused
        group = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._writer = group.create_task(self._write_loop(), name="outbox-writer")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        self._wake.set()
        self._has_data.set()
        try:
            await self._stack.aclose()
        finally:
            try:
                await self._run(self._db.close)
            finally:
                assert self._executor is not None
                self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StorageError("the outbox is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- putting -----------------------------------------------------------------------------

    @property
    def telemetry_refused(self) -> bool:
        return self._refused

    def _check_open(self) -> None:
        if self._closing or self._writer is None:
            raise StorageError("the outbox is closed")

    async def _wait_for_space(self) -> None:
        if self._failure is not None:
            raise StorageError(f"outbox queue full and the database is failing: {self._failure}")
        self._space.clear()
        await self._space.wait()
        self._check_open()

    def _enqueue(self, entry: Sample | Sequence[Sample] | EncodedEvent, count: int) -> None:
        self._entries.append(entry)
        self._queued += count
        self._enqueued_total += count
        self._has_data.set()
        if self._queued >= self._commit_batch:
            self._wake.set()

    async def put_sample(self, sample: Sample) -> None:
        """Queue one sample; waits while the queue is full. Durable after ``flush()``."""
        self._check_open()
        if self._refused:
            raise QuotaExceeded("the outbox is full of events; telemetry is refused")
        while self._queued >= self._queue_size:
            await self._wait_for_space()
        self._enqueue(sample, 1)

    async def put_samples(self, samples: Sequence[Sample]) -> None:
        """Queue many samples, taking queue places as they free up."""
        self._check_open()
        if self._refused:
            raise QuotaExceeded("the outbox is full of events; telemetry is refused")
        done = 0
        total = len(samples)
        while done < total:
            room = self._queue_size - self._queued
            if room <= 0:
                await self._wait_for_space()
                continue
            # A copy either way (slicing copies): the caller may reuse its list once we return.
            chunk = (
                samples[done : done + room]
                if isinstance(samples, list)
                else list(samples[done : done + room])
            )
            self._enqueue(chunk, len(chunk))
            done += len(chunk)

    async def put_event(self, event: Event) -> None:
        """Queue one event. Never refused for the quota; waits while the queue is full."""
        self._check_open()
        encoded = EncodedEvent(event.kind, event.source, event.ts, pack_event_data(event.data))
        while self._queued >= self._queue_size:
            await self._wait_for_space()
        self._enqueue(encoded, 1)

    async def flush(self) -> None:
        """Return when everything put before this call is committed (see the module docstring)."""
        target = self._enqueued_total
        if self._committed_total >= target:
            return
        if self._writer is None or self._writer.done():
            raise StorageError("the outbox writer is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushers.append((target, future))
        self._wake.set()
        await future

    # -- the writer --------------------------------------------------------------------------

    def _take(self) -> tuple[list[Sequence[Sample]], list[EncodedEvent], int]:
        """Up to ``commit_batch`` records from the head of the queue."""
        parts: list[Sequence[Sample]] = []
        singles: list[Sample] = []
        events: list[EncodedEvent] = []
        taken = 0
        entries = self._entries
        while entries and taken < self._commit_batch:
            entry = entries.popleft()
            if isinstance(entry, Sample):
                singles.append(entry)
                taken += 1
            elif isinstance(entry, EncodedEvent):
                events.append(entry)
                taken += 1
            else:
                room = self._commit_batch - taken
                if len(entry) > room:
                    entries.appendleft(entry[room:])
                    entry = entry[:room]
                parts.append(entry)
                taken += len(entry)
        if singles:
            parts.append(singles)
        self._queued -= taken
        return parts, events, taken

    async def _write_loop(self) -> None:
        while True:
            await self._has_data.wait()
            if not self._closing and self._queued < self._commit_batch and not self._flushers:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._commit_interval_s):
                        await self._wake.wait()
            self._wake.clear()
            parts, events, taken = self._take()
            if not self._entries:
                self._has_data.clear()
            self._space.set()
            if taken:
                await self._commit(parts, events)
                self._committed_total += taken
            self._release_flushers()
            if self._closing and not self._entries:
                return

    async def _commit(self, parts: list[Sequence[Sample]], events: list[EncodedEvent]) -> None:
        delay_s = _RETRY_FIRST_S
        attempts = 0
        while True:
            attempts += 1
            try:
                await self._run(self._db.write, parts, events)
            except StorageError as exc:
                if self._failure is None:
                    _LOG.error("outbox commit failed; keeping rows in memory and retrying", error=str(exc))
                self._failure = exc
                self._refused = self._db.refused
                self._fail_flushers(exc)
                self._space.set()  # waiting producers must see the failure, not wait forever
                if self._closing and attempts >= _CLOSE_ATTEMPTS:
                    lost = sum(len(p) for p in parts) + len(events) + self._queued
                    _LOG.error("outbox closing on a failing database; records not stored", records=lost)
                    raise
                await asyncio.sleep(delay_s * random.uniform(0.5, 1.0))
                delay_s = min(delay_s * 2, _RETRY_MAX_S)
                continue
            self.commits += 1
            if self._failure is not None:
                _LOG.info("outbox commits again", attempts=attempts)
                self._failure = None
            self._refused = self._db.refused
            return

    def _release_flushers(self) -> None:
        done = self._committed_total
        keep: list[tuple[int, asyncio.Future[None]]] = []
        for target, future in self._flushers:
            if target <= done:
                if not future.done():
                    future.set_result(None)
            else:
                keep.append((target, future))
        self._flushers = keep

    def _fail_flushers(self, exc: StorageError) -> None:
        for _target, future in self._flushers:
            if not future.done():
                future.set_exception(StorageError(f"outbox commit failed: {exc}"))
        self._flushers = []

    # -- the batch store (cloud_sync.ports.BatchStore) ----------------------------------------

    async def seal(
        self, lane: Lane, *, mode: SealMode, max_records: int, sealer: Sealer
    ) -> SealedBatch | None:
        return await self._run(self._db.seal, Lane(lane), SealMode(mode), max_records, sealer)

    async def pending(self, lane: Lane, *, after_seq: int = 0, limit: int = 100) -> list[SealedBatch]:
        return await self._run(self._db.pending, Lane(lane), after_seq, limit)

    async def acknowledge(self, lane: Lane, upto_seq: int) -> int:
        deleted = await self._run(self._db.acknowledge, Lane(lane), upto_seq)
        self._refused = self._db.refused
        return deleted

    async def backlog(self) -> dict[str, Any]:
        stats = await self._run(self._db.backlog)
        stats["queued"] = self._queued
        stats["commits"] = self.commits
        stats["failing"] = None if self._failure is None else str(self._failure)
        return stats

    async def advance_seq(self, lane: Lane, at_least: int) -> int:
        """Never hand out a sequence number ≤ ``at_least`` in ``lane`` (central has seen it)."""
        return await self._run(self._db.advance_seq, Lane(lane), at_least)

    async def run_in_db_thread(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(sqlite3.Connection)`` on the database thread: for tests and diagnostics."""
        return await self._run(lambda: fn(self._db.conn))

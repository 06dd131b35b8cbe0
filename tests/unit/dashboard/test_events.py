"""Server-sent events: value and alarm updates reach the browser; a slow client is dropped."""

from __future__ import annotations

import asyncio

import pytest

from core.model import Quality, Reason, Sample
from edge.dashboard.events import EventHub
from edge.live import LiveState
from tests.support import wait_until
from tests.unit.dashboard.conftest import Running, setup_admin
from tests.unit.dashboard.sse import next_event, sse_events


async def test_sse_delivers_value_and_alarm_updates(dash: Running) -> None:
    await setup_admin(dash.client)
    gw = dash.gateway
    async with asyncio.timeout(30), dash.client.stream("GET", "/api/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = sse_events(response)
        hello = await next_event(stream, "hello")
        assert hello["server_time"] == gw.clock.wall()
        # Several samples of one point within one interval arrive as one, the latest.
        gw.live.update([Sample("testsite/m1/voltage_l1", 229.0, Quality.GOOD, 100.0)])
        gw.live.update([Sample("testsite/m1/voltage_l1", 231.5, Quality.GOOD, 100.2)])
        gw.live.update(
            [Sample("testsite/m1/current_l1", float("nan"), Quality.BAD, 100.2, Reason.OUT_OF_RANGE)]
        )
        values = await next_event(stream, "values")
        assert sorted(values["points"]) == [
            ["testsite/m1/current_l1", None, "bad", 100.2],
            ["testsite/m1/voltage_l1", 231.5, "good", 100.2],
        ]
        gw.alarms.raise_alarm("testsite/m1/smoke/fire", zh="一号楼火警", en="Fire in building 1")
        alarm = await next_event(stream, "alarm")
        assert alarm["key"] == "testsite/m1/smoke/fire" and alarm["transition"] == "raised"
        assert alarm["row"]["message"]["zh"] == "一号楼火警" and alarm["row"]["state"] == "unacked"
        gw.live.set_online("m1", False)
        device = await next_event(stream, "device")
        assert device == {"id": "m1", "online": False}


async def test_sse_needs_a_session(dash: Running) -> None:
    response = await dash.client.get("/api/events")
    assert response.status_code == 401 and response.json() == {"error": "login"}


async def test_a_slow_client_is_dropped_without_blocking_the_producer() -> None:
    live = LiveState()
    hub = EventHub(live, queue_size=16, values_interval_s=0.5)
    hub.start()
    slow = hub.connect("slow")
    fast = hub.connect("fast")
    for i in range(100):
        hub.broadcast("alarm", {"n": i})  # never blocks, whatever the clients do
        while not fast.queue.empty():
            fast.queue.get_nowait()
    assert slow.dropped and hub.dropped_clients == 1 and hub.clients == 1
    items = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
    assert items[-1] is None  # the stream ends; EventSource reconnects and reloads
    assert not fast.dropped
    hub.close()
    assert fast.queue.get_nowait() is None


async def test_values_are_collected_only_while_someone_listens() -> None:
    live = LiveState()
    hub = EventHub(live, queue_size=16)
    hub.start()
    live.update([Sample("s/d/p", 1, Quality.GOOD, 1.0)])
    hub.flush()
    client = hub.connect("u")
    hub.flush()
    assert client.queue.empty()
    live.update([Sample("s/d/p", 2, Quality.GOOD, 2.0)])
    hub.flush()
    event, data = await client.queue.get()  # type: ignore[misc]
    assert event == "values" and data == '{"points": [["s/d/p", 2, "good", 2.0]]}'
    hub.close()


async def test_a_stream_ends_when_its_session_times_out(
    dash: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("edge.dashboard.app._SESSION_CHECK_S", 0.2)
    await setup_admin(dash.client)
    hub = dash.server.ctx.hub if dash.server.ctx else None
    assert hub is not None
    async with asyncio.timeout(30), dash.client.stream("GET", "/api/events") as response:
        stream = sse_events(response)
        await next_event(stream, "hello")
        assert hub.clients == 1
        dash.gateway.clock.advance(31 * 60)  # past the 30 min idle timeout
        async for _ in stream:
            pass  # the server ends the stream
    await wait_until(lambda: hub.clients == 0, message="the client gone from the hub")


async def test_a_closed_stream_leaves_the_hub(dash: Running) -> None:
    await setup_admin(dash.client)
    hub = dash.server.ctx.hub if dash.server.ctx else None
    assert hub is not None
    async with asyncio.timeout(30), dash.client.stream("GET", "/api/events") as response:
        await next_event(sse_events(response), "hello")
    # The next broadcast notices the client is gone (or the server's ping does).
    dash.gateway.alarms.raise_alarm("testsite/m1/smoke/fire")
    await wait_until(lambda: hub.clients == 0, message="the client gone from the hub")

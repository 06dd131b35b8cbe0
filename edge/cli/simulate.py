"""`gatehouse simulate`: serve simulated devices, inject scenarios, run scale mode.

::

    gatehouse simulate SITE.yaml [--control-port 8470] [--control-host 127.0.0.1] [--tick-s 0.5]
    gatehouse simulate inject SCENARIO --device D [--zone N] [--param k=v ...] [--control URL]
    gatehouse simulate clear [SCENARIO] --device D [--control URL]
    gatehouse simulate list [--control URL]
    gatehouse simulate scale --family F --count N --base-port P [--units-per-port K]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = ["register"]

DEFAULT_CONTROL = "http://127.0.0.1:8470"


def _httpx() -> ModuleType:
    """httpx, imported when a subcommand talks to the control API: every ``gatehouse`` process
    loads this module to build its parser, and the daemon has no use for httpx's 3 MB."""
    import httpx  # noqa: PLC0415

    return httpx


_ACTIONS = ("inject", "clear", "list", "scale")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "simulate",
        help="serve simulated devices for a site file; inject scenarios; scale mode",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", help="a site file, or one of: " + ", ".join(_ACTIONS))
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(handler=_handle)


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gatehouse simulate SITE.yaml")
    p.add_argument("--control-port", type=int, default=8470, help="HTTP control API port (0: any free port)")
    p.add_argument("--control-host", default="127.0.0.1", help="bind address of the control API")
    p.add_argument("--no-control", action="store_true", help="do not start the control API")
    p.add_argument("--tick-s", type=float, default=0.5, help="how often the models step")
    p.add_argument("--frozen", action="store_true", help="no physics: values change only by scenarios")
    return p


def _inject_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gatehouse simulate inject")
    p.add_argument("scenario")
    p.add_argument("--device", required=True)
    p.add_argument("--control", default=DEFAULT_CONTROL, help=f"control API URL (default {DEFAULT_CONTROL})")
    p.add_argument("--zone", type=int, help="zone number (fire panel, evacuation lighting)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="scenario parameter, e.g. --param delay_ms=2000 (repeatable)",
    )
    return p


def _clear_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gatehouse simulate clear")
    p.add_argument("scenario", nargs="?", help="the scenario to end (default: all of the device's)")
    p.add_argument("--device", required=True)
    p.add_argument("--control", default=DEFAULT_CONTROL)
    return p


def _list_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gatehouse simulate list")
    p.add_argument("--control", default=DEFAULT_CONTROL)
    p.add_argument("--scenarios", action="store_true", help="list every family's scenarios instead")
    return p


def _scale_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gatehouse simulate scale")
    p.add_argument("--family", required=True, help="a family (e.g. meter) or a profile id")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--base-port", type=int, default=16000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--units-per-port", type=int, default=1)
    p.add_argument("--tick-s", type=float, default=1.0)
    p.add_argument("--control-port", type=int, default=None)
    return p


def _handle(args: argparse.Namespace) -> int:
    from edge.logs import configure_logging

    configure_logging(args.log_level, json=not sys.stderr.isatty())
    httpx = _httpx()
    target: str = args.target
    rest: list[str] = args.rest
    try:
        if target == "inject":
            return _inject(_inject_parser().parse_args(rest))
        if target == "clear":
            return _clear(_clear_parser().parse_args(rest))
        if target == "list":
            return _list(_list_parser().parse_args(rest))
        if target == "scale":
            return _scale(_scale_parser().parse_args(rest))
        return _serve_site(Path(target), _serve_parser().parse_args(rest))
    except httpx.HTTPError as exc:
        print(f"gatehouse simulate: the control API did not answer: {exc}", file=sys.stderr)
        return 1


def _param_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _inject(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    if args.zone is not None:
        params["zone"] = args.zone
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"gatehouse simulate inject: --param wants KEY=VALUE, not {item!r}", file=sys.stderr)
            return 2
        params[key] = _param_value(value)
    url = f"{args.control}/devices/{args.device}/scenarios/{args.scenario}"
    response = _httpx().post(url, json=params, timeout=10)
    return _report(response)


def _clear(args: argparse.Namespace) -> int:
    suffix = f"/{args.scenario}" if args.scenario else ""
    response = _httpx().delete(f"{args.control}/devices/{args.device}/scenarios{suffix}", timeout=10)
    return _report(response)


def _list(args: argparse.Namespace) -> int:
    response = _httpx().get(f"{args.control}/{'scenarios' if args.scenarios else 'devices'}", timeout=10)
    if response.is_success and not args.scenarios:
        for device in response.json():
            active = ", ".join(device["active"]) or "-"
            print(
                f"{device['id']:<28} {device['family']:<20} unit {device['unit']:<3} "
                f"{device['endpoint']}  active: {active}"
            )
        return 0
    return _report(response)


def _report(response: httpx.Response) -> int:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.is_success:
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    detail = body.get("detail", body) if isinstance(body, dict) else body
    print(f"gatehouse simulate: {response.status_code}: {detail}", file=sys.stderr)
    return 1


def _serve_site(path: Path, args: argparse.Namespace) -> int:
    from simulators.site_plan import read_site_plan

    if not path.is_file():
        print(
            f"gatehouse simulate: no such site file: {path} (or use: {', '.join(_ACTIONS)})", file=sys.stderr
        )
        return 2
    plan = read_site_plan(path)
    control = None if args.no_control else args.control_port
    tick = None if args.frozen else args.tick_s
    return _run(
        list(plan.devices), tick_s=tick, control_host=args.control_host, control_port=control, site_path=path
    )


def _scale(args: argparse.Namespace) -> int:
    from simulators.scale import plan_scale

    devices = plan_scale(
        args.family, args.count, args.base_port, host=args.host, units_per_port=args.units_per_port
    )
    return _run(devices, tick_s=args.tick_s, control_host="127.0.0.1", control_port=args.control_port)


def _run(
    devices: list[Any],
    *,
    tick_s: float | None,
    control_host: str,
    control_port: int | None,
    site_path: Path | None = None,
) -> int:
    from simulators.runner import SimulationRunner

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with SimulationRunner(
            devices, tick_s=tick_s, control_host=control_host, control_port=control_port, site_path=site_path
        ) as sim:
            endpoints = len(sim.tcp_servers) + len(sim.rtu_servers) + len(sim.rtu_tcp_servers)
            endpoints += len(sim.protocol.servers)
            count = len(sim.devices) + len(sim.protocol.devices)
            print(f"simulating {count} devices on {endpoints} endpoints", flush=True)
            for path, rtu in sim.rtu_servers.items():
                print(f"  serial line {path} -> {rtu.slave_path}", flush=True)
            for endpoint in sim.rtu_tcp_servers:
                print(f"  RTU over TCP {endpoint[0]}:{endpoint[1]}", flush=True)
            for line in sim.protocol.servers:
                print(f"  {line}", flush=True)
            if control_port is not None:
                print(f"control API: {sim.control_url}", flush=True)
            await stop.wait()

    try:
        asyncio.run(serve())
    except OSError as exc:
        # Typically a port in use: another simulator, or the real device's port on this host.
        print(f"gatehouse simulate: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0

"""An OPC UA plant simulator on an asyncua server, for tests, the demo and benchmarks.

``OpcUaSimulator`` is an async context manager serving one or more models (``models.py``) under
the Objects folder, one object per model, with string NodeIds ``ns=2;s=<Model>.<A>.<B>`` and
browse names in namespace ``urn:gatehouse:simulator:plant``. It has its own application
certificate (made on first start in ``pki_dir``), offers Basic256Sha256, Aes128_Sha256_RsaOaep
and Aes256_Sha256_RsaPss with Sign and SignAndEncrypt, and accepts user/password (and, if asked,
anonymous and X.509 identities).

asyncua 2.1.0 lets a client activate a session over a None-policy channel even when the None
endpoint is not offered; this server refuses such activations itself
(BadSecurityModeRejected) unless it was started with ``insecure=True``.

Faults for tests: ``restart()`` (sessions and subscriptions lost), ``delay_ms`` (every read and
write answered late), ``bad_status()`` (a variable reports a Bad StatusCode), ``remove()`` (a
variable disappears, also across restarts).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.common.callback import CallbackType
from asyncua.common.node import Node
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaError

from drivers.opcua.certs import write_application_certificate
from simulators.opcua.models import Model, Variable

__all__ = ["APPLICATION_URI", "NAMESPACE", "OpcUaSimulator", "SessionCounts"]

_LOG = logging.getLogger(__name__)

NAMESPACE = "urn:gatehouse:simulator:plant"
APPLICATION_URI = "urn:gatehouse:simulator:opcua"

_VARIANT: dict[str, ua.VariantType] = {
    "bool": ua.VariantType.Boolean,
    "int16": ua.VariantType.Int16,
    "int32": ua.VariantType.Int32,
    "float": ua.VariantType.Float,
    "double": ua.VariantType.Double,
    "string": ua.VariantType.String,
}
_SECURE_POLICIES = [
    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ua.SecurityPolicyType.Basic256Sha256_Sign,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
]


_ANONYMOUS = User(role=UserRole.Anonymous)
# Values written per chunk before the server's publishing gets a turn (latency vs. overhead).
_PUBLISH_CHUNK = 500
_NULL = ua.Variant(None, ua.VariantType.Null)


class _SharedDataValue(ua.DataValue):
    """A DataValue the simulator never mutates once written.

    asyncua deep-copies every written DataValue once per monitored item
    (``MonitoredItemValues.set_current_datavalue``) so that a later in-place change cannot
    alter what was queued; that copy was half of the server's CPU per published value. The
    simulator builds a new DataValue for each change, so the copy may share it.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, object]) -> _SharedDataValue:
        return self


class SessionCounts:
    """What the server saw: activations over secure channels, and refused None-policy ones."""

    __slots__ = ("activated", "refused_insecure", "refused_user")

    def __init__(self) -> None:
        self.activated = 0
        self.refused_insecure = 0
        self.refused_user = 0


class _SecureOnlySession(InternalSession):
    """Refuses ActivateSession over a channel without a client certificate (policy None)."""

    def activate_session(
        self, params: ua.ActivateSessionParameters, peer_certificate: bytes | None
    ) -> ua.ActivateSessionResult:
        server: _GuardedInternalServer = self.iserver  # type: ignore[assignment]
        if not peer_certificate and not server.allow_insecure:  # None policy: b"" or None
            server.counts.refused_insecure += 1
            raise ua.uaerrors.BadSecurityModeRejected()  # type: ignore[no-untyped-call]
        result = super().activate_session(params, peer_certificate)
        server.counts.activated += 1
        return result


class _GuardedInternalServer(InternalServer):
    def __init__(self, user_manager: Any, *, allow_insecure: bool, counts: SessionCounts) -> None:
        super().__init__(user_manager=user_manager)
        self.allow_insecure = allow_insecure
        self.counts = counts

    def create_session(self, name: str, user: User = _ANONYMOUS, external: bool = False) -> InternalSession:
        if not external:
            return super().create_session(name, user, external)
        return _SecureOnlySession(
            self, self.aspace, self.subscription_service, name, user=user, external=external
        )


class _Users:
    """user/password pairs, optional anonymous and X.509 identities."""

    def __init__(
        self, users: Mapping[str, str], *, anonymous: bool, certificates: bool, counts: SessionCounts
    ):
        self._users = dict(users)
        self._anonymous = anonymous
        self._certificates = certificates
        self._counts = counts

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is not None:
            if self._users.get(username) == password:
                return User(role=UserRole.User, name=username)
            self._counts.refused_user += 1
            return None
        if self._anonymous or (self._certificates and certificate is not None):
            return User(role=UserRole.User, name="anonymous" if certificate is None else "certificate")
        return None


class OpcUaSimulator:
    """Serves ``models`` on ``opc.tcp://host:port/gatehouse/sim``."""

    def __init__(
        self,
        models: Sequence[Model],
        *,
        pki_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, str] | None = None,
        allow_anonymous: bool = False,
        allow_certificates: bool = True,
        insecure: bool = False,
        tick_s: float = 0.5,
        catch_up: bool = False,
    ) -> None:
        self.models = {model.name: model for model in models}
        self.pki_dir = pki_dir
        self.host = host
        self.port = port or _free_port(host)
        self.users = dict(users if users is not None else {"operator": "operator-pass"})
        self.allow_anonymous = allow_anonymous
        self.allow_certificates = allow_certificates
        self.insecure = insecure
        self.tick_s = tick_s
        # A load generator catches up on late ticks (a steady offered rate); a plant skips them.
        self.catch_up = catch_up
        self.delay_ms = 0.0
        self.counts = SessionCounts()
        self.running = False
        self._server: Server | None = None
        self._nodes: dict[tuple[str, str], Node] = {}
        self._bad: dict[tuple[str, str], int] = {}
        self._removed: set[tuple[str, str]] = set()
        self._physics: asyncio.Task[None] | None = None
        self.ns = 2

    # -- properties ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/gatehouse/sim"

    @property
    def certificate_path(self) -> Path:
        return self.pki_dir / "simulator-cert.der"

    @property
    def key_path(self) -> Path:
        return self.pki_dir / "simulator-key.pem"

    @staticmethod
    def node_id(model: str, path: str) -> str:
        return f"ns=2;s={model}.{path.replace('/', '.')}"

    # -- lifetime -----------------------------------------------------------------------------

    async def __aenter__(self) -> OpcUaSimulator:
        if not self.certificate_path.exists():
            self.pki_dir.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(
                write_application_certificate,
                self.certificate_path,
                self.key_path,
                APPLICATION_URI,
                socket.gethostname(),
                name="Gatehouse OPC UA simulator",
            )
        await self.start()
        self._physics = asyncio.create_task(self._run_physics(), name="opcua-sim-physics")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._physics is not None:
            self._physics.cancel()
            with suppress(asyncio.CancelledError):
                await self._physics
        await self.stop()

    async def start(self) -> None:
        counts = self.counts
        users = _Users(
            self.users, anonymous=self.allow_anonymous, certificates=self.allow_certificates, counts=counts
        )
        server = Server(iserver=_GuardedInternalServer(users, allow_insecure=self.insecure, counts=counts))
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("Gatehouse OPC UA plant simulator")
        await server.set_application_uri(APPLICATION_URI)
        await server.load_certificate(str(self.certificate_path))
        await server.load_private_key(str(self.key_path))
        policies = list(_SECURE_POLICIES)
        if self.insecure:
            policies.insert(0, ua.SecurityPolicyType.NoSecurity)
        server.set_security_policy(policies)
        tokens: list[type] = [ua.UserNameIdentityToken]
        if self.allow_anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        if self.allow_certificates:
            tokens.append(ua.X509IdentityToken)
        server.set_identity_tokens(tokens)
        # The client certificate must carry the ApplicationUri the session claims.
        validator = CertificateValidator(CertificateValidatorOptions.BASIC_VALIDATION)
        server.set_certificate_validator(validator)
        self.ns = await server.register_namespace(NAMESPACE)
        await self._populate(server)
        server.subscribe_server_callback(CallbackType.PreRead, self._slow)
        server.subscribe_server_callback(CallbackType.PreWrite, self._slow)
        await server.start()
        self._server = server
        self.running = True

    async def stop(self) -> None:
        server, self._server = self._server, None
        self.running = False
        self._nodes.clear()
        if server is not None:
            with suppress(OSError, UaError, asyncio.CancelledError):
                await server.stop()

    async def restart(self, down_s: float = 0.0) -> None:
        """Stop (every session and subscription is gone), wait ``down_s``, start again."""
        await self.stop()
        if down_s:
            await asyncio.sleep(down_s)
        await self.start()

    async def _slow(self, event: object, dispatcher: object) -> None:
        if self.delay_ms:
            await asyncio.sleep(self.delay_ms / 1000)

    async def _populate(self, server: Server) -> None:
        objects = server.nodes.objects
        ns = self.ns
        for model in self.models.values():
            root = await objects.add_object(_string_id(model.name, ns), ua.QualifiedName(model.name, ns))
            folders: dict[str, Node] = {"": root}
            for variable in model.variables.values():
                if (model.name, variable.path) in self._removed:
                    continue
                parts = variable.path.split("/")
                parent = root
                for depth in range(1, len(parts)):
                    key = "/".join(parts[:depth])
                    if key not in folders:
                        folder_id = _string_id(f"{model.name}.{key.replace('/', '.')}", ns)
                        folders[key] = await parent.add_object(
                            folder_id, ua.QualifiedName(parts[depth - 1], ns)
                        )
                    parent = folders[key]
                self._nodes[(model.name, variable.path)] = await self._add_variable(parent, model, variable)

    async def _add_variable(self, parent: Node, model: Model, variable: Variable) -> Node:
        ns = self.ns
        text_id = f"{model.name}.{variable.path.replace('/', '.')}"
        node_id = _string_id(text_id, ns)
        name = variable.path.rsplit("/", 1)[-1]
        node = await parent.add_variable(
            node_id, ua.QualifiedName(name, ns), ua.Variant(variable.value, _VARIANT[variable.type])
        )
        if variable.writable:
            await node.set_writable()
        if variable.description:
            await node.write_attribute(
                AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(variable.description)))
            )
        if variable.unit:
            eu = ua.EUInformation()
            eu.NamespaceUri = "http://www.opcfoundation.org/UA/units/un/cefact"
            eu.DisplayName = ua.LocalizedText(variable.unit)
            eu.Description = ua.LocalizedText(variable.unit)
            await node.add_property(
                _string_id(f"{text_id}.EngineeringUnits", ns),
                ua.QualifiedName("EngineeringUnits", 0),
                ua.Variant(eu, ua.VariantType.ExtensionObject),
            )
        return node

    # -- physics ------------------------------------------------------------------------------

    async def _run_physics(self) -> None:
        # Phase-locked: a tick that takes a while does not stretch the period.
        loop = asyncio.get_running_loop()
        last = due = loop.time()
        while True:
            due += self.tick_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            if due < now - self.tick_s and not self.catch_up:
                due = now  # fell behind by more than a tick: skip, do not bunch
            if not self.running:
                last = now
                continue
            await self.tick(now - last)
            last = now

    async def tick(self, dt_s: float) -> None:
        """Copy client writes into the models, step them, publish what changed."""
        server = self._server
        if server is None:
            return
        for model in self.models.values():
            for variable in model.variables.values():
                if variable.writable:
                    node = self._nodes.get((model.name, variable.path))
                    if node is not None:
                        current = server.read_attribute_value(node.nodeid).Value
                        if current is not None and current.Value is not None:
                            variable.value = current.Value
            changed = model.step_changed(dt_s)
            # A variable with a bad status is re-sent every tick, as a failing source would.
            variables = model.variables
            stuck = [variables[path] for name, path in self._bad if name == model.name and path in variables]
            if stuck:
                seen = set(map(id, changed))
                changed = changed + [variable for variable in stuck if id(variable) not in seen]
            await self._publish_many(model.name, changed)

    async def _publish(self, model: str, variable: Variable) -> None:
        await self._publish_many(model, [variable])

    async def _publish_many(self, model: str, variables: Sequence[Variable]) -> None:
        """Write the current values of ``variables`` with one source timestamp (they changed
        at the same instant), straight into the address space, yielding to the server's
        publishing between chunks."""
        server = self._server
        if server is None or not variables:
            return
        write = server.iserver.aspace.write_attribute_value
        value_id = AttributeIds.Value
        nodes = self._nodes
        bad_codes = self._bad
        now: Any = dt.datetime.now(dt.UTC)
        for start in range(0, len(variables), _PUBLISH_CHUNK):
            if start:
                await asyncio.sleep(0)
                if self._server is not server:
                    return  # stopped (or restarted) while publishing
            for variable in variables[start : start + _PUBLISH_CHUNK]:
                node = nodes.get((model, variable.path))
                if node is None:
                    continue
                bad = bad_codes.get((model, variable.path)) if bad_codes else None
                if bad is not None:
                    value = _SharedDataValue(
                        _NULL,
                        StatusCode=ua.StatusCode(ua.UInt32(bad)),
                        SourceTimestamp=now,
                        ServerTimestamp=now,
                    )
                else:
                    value = _SharedDataValue(
                        ua.Variant(variable.value, _VARIANT[variable.type]),
                        SourceTimestamp=now,
                        ServerTimestamp=now,
                    )
                await write(node.nodeid, value_id, value)

    # -- control ------------------------------------------------------------------------------

    def model(self, name: str) -> Model:
        return self.models[name]

    async def set(self, model: str, path: str, value: bool | int | float | str) -> None:
        """Set a variable now (as the plant would), and publish it."""
        variable = self.models[model].variables[path]
        variable.value = value
        await self._publish(model, variable)

    def value(self, model: str, path: str) -> object:
        """What the server holds for a variable now (None when stopped or removed)."""
        node = self._nodes.get((model, path))
        if self._server is None or node is None:
            return None
        variant = self._server.read_attribute_value(node.nodeid).Value
        return None if variant is None else variant.Value

    async def scenario(self, model: str, name: str) -> None:
        target = self.models[model]
        before = {path: v.value for path, v in target.variables.items()}
        target.scenario(name)
        # What the scenario set is published now; the next tick only sees its own changes.
        for path, variable in target.variables.items():
            if variable.value != before[path]:
                await self._publish(model, variable)
        await self.tick(0.0)

    async def bad_status(self, model: str, path: str, code: int | None) -> None:
        """Make a variable report StatusCode ``code`` (None: back to good values)."""
        if code is None:
            self._bad.pop((model, path), None)
        else:
            self._bad[(model, path)] = code
        await self._publish(model, self.models[model].variables[path])

    async def remove(self, model: str, path: str) -> None:
        """Delete a variable from the address space (and keep it deleted across restarts)."""
        self._removed.add((model, path))
        node = self._nodes.pop((model, path), None)
        if node is not None and self._server is not None:
            await self._server.delete_nodes([node])


def _string_id(text: str, ns: int) -> ua.NodeId:
    return ua.NodeId(ua.String(text), ua.Int16(ns))


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port

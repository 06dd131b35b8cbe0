"""bacpypes3's failures translated to the project's error tree (``core.errors``).

bacpypes3 raises a device's Error, Reject and Abort answers as the APDUs themselves, which
derive from ``BaseException``: an ``except Exception`` lets them through. Everything that
talks to bacpypes3 goes through :func:`translate` so callers only see ``TransportError`` or
``DeviceError``. ``Refusal`` keeps what the device said (kind, class, reason) so the driver
can react (fall back to ReadProperty, split a request that did not fit).
"""

from __future__ import annotations

from core.errors import ConnectionLost, DeviceError, DeviceTimeout, GatehouseError

__all__ = ["Refusal", "bacnet_failures", "translate"]


class Refusal(DeviceError):
    """The device answered Error, Reject or Abort. ``kind`` is ``error``/``reject``/``abort``;
    ``reason`` is the error code or the reject/abort reason (``unknown-object``,
    ``unrecognized-service``, ``segmentation-not-supported``...); ``error_class`` for errors."""

    def __init__(self, message: str, *, kind: str, reason: str, error_class: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.reason = reason
        self.error_class = error_class

    @property
    def service_refused(self) -> bool:
        """The device does not do this service at all."""
        return (self.kind == "reject" and self.reason == "unrecognized-service") or (
            self.error_class == "services"
            and self.reason in ("service-request-denied", "optional-functionality-not-supported")
        )

    @property
    def too_big(self) -> bool:
        """The request or its answer did not fit what the device can take or send."""
        return self.reason in (
            "segmentation-not-supported",
            "buffer-overflow",
            "apdu-too-long",
            "abort-buffer-overflow",
        )

    @property
    def unknown(self) -> bool:
        """The object or property does not exist."""
        return self.reason in ("unknown-object", "unknown-property", "invalid-array-index")


def bacnet_failures() -> tuple[type[BaseException], ...]:
    """The exception types bacpypes3 raises for a failed request (imported lazily)."""
    from bacpypes3.apdu import ErrorRejectAbortNack
    from bacpypes3.errors import AbortException, DecodingError, ExecutionError, RejectException

    return (ErrorRejectAbortNack, ExecutionError, RejectException, AbortException, DecodingError)


def translate(exc: BaseException, what: str) -> GatehouseError:
    """The project error for a bacpypes3 failure of request ``what`` (for messages)."""
    from bacpypes3.apdu import AbortPDU, ErrorPDU, RejectPDU
    from bacpypes3.errors import CommuncationError, ExecutionError

    if isinstance(exc, AbortPDU):
        reason = str(exc.apduAbortRejectReason)
        if reason == "no-response":
            return DeviceTimeout(f"{what}: no answer")
        return Refusal(f"{what}: abort {reason}", kind="abort", reason=reason)
    if isinstance(exc, RejectPDU):
        reason = str(exc.apduAbortRejectReason)
        return Refusal(f"{what}: reject {reason}", kind="reject", reason=reason)
    if isinstance(exc, ErrorPDU):
        error_class = str(getattr(exc, "errorClass", ""))
        code = str(getattr(exc, "errorCode", ""))
        return Refusal(
            f"{what}: error {error_class}/{code}", kind="error", reason=code, error_class=error_class
        )
    if isinstance(exc, CommuncationError):
        return ConnectionLost(f"{what}: {exc}")
    if isinstance(exc, ExecutionError):
        return Refusal(
            f"{what}: {exc.errorClass}/{exc.errorCode}",
            kind="error",
            reason=str(exc.errorCode),
            error_class=str(exc.errorClass),
        )
    return Refusal(f"{what}: {type(exc).__name__}: {exc}", kind="local", reason=type(exc).__name__)

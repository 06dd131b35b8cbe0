"""GB/T 26875.3-2011: fire panels reporting through a user information transmission device.

``frame`` (framing, pure), ``objects`` (information objects, pure), ``mapping`` (objects to
points, pure), ``config`` (bus/device/point/profile models), ``device`` and ``transport``
(the push-only driver and its TCP/serial link), ``plugin`` (registers bus type ``gb26875``).
The guide is ``docs/gb26875.md``.
"""

"""BACnet/IP (ANSI/ASHRAE 135 Annex J) on bacpypes3: the ``bacnet_ip`` bus type.

``config`` holds the site-file models, ``objects`` the pure tables and planning (object types,
properties, quality from status flags, ReadPropertyMultiple packing), ``link`` the one
bacpypes3 application per bus, ``cov`` its change-of-value subscriptions, ``device`` the
``Driver`` of one BACnet device, ``discover`` the who-is walk that writes a site fragment.
Only ``config`` and ``plugin`` are imported when a site is checked; bacpypes3 is loaded when
a bus opens.
"""

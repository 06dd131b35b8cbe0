"""OPC UA driver (bus type ``opcua``) on asyncua: configuration models, application
certificates and the server trust list, the session link with subscriptions and batched polls,
and browse discovery (``drivers.opcua.discover``).

Import ``drivers.opcua.session`` (which loads asyncua) only where a session is wanted; the
package itself and ``config``/``certs`` stay light for ``gatehouse check`` and ``gatehouse certs``.
"""

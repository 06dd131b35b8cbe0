"""The gateway's identity as issued by central: keys made here, certificate and pins from central.

``gatehouse enroll URL TOKEN`` (``edge.cli.enroll``) makes the keys, trades a one-time token for a
certificate at central's ``/api/v1/enroll`` and writes an identity folder; the site file's
``uplink: {identity: DIR}`` (``edge.uplink.wiring``) then takes the uplink's settings from it, and
:mod:`edge.identity.renewal` renews it before the certificate runs out.

* :mod:`~edge.identity.material` — new keys and the CSR (pure, no I/O);
* :mod:`~edge.identity.protocol` — the enrolment wire contract: request bodies, the renew
  signature's bytes, the answer's checks (pure);
* :mod:`~edge.identity.folder` — the folder on disk: read, write atomically, prune;
* :mod:`~edge.identity.client` — the HTTPS calls (httpx);
* :mod:`~edge.identity.renewal` — the daemon's renewal task and its status.
"""

"""The site's ``uplink:`` section and the running uplink (``wiring``); the uplink itself is
``cloud_sync.uplink``, which knows nothing of site files."""

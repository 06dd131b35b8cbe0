"""Central's side of the signed downlink commands (issue 15): issue, send, track.

* :mod:`.ledger` — ``commands.db``: every command central issued, the per-gateway ``cseq``
  counter, the results matched to them;
* :mod:`.states` — pure: a command's state from its row, its result and the clock;
* :mod:`.publisher` — where signed commands go: central's ingest MQTT connection, or a small
  connection of its own in an API-only process;
* :mod:`.service` — issue (validate, number, sign, publish) and read (results matched from
  central's stored ``command.result`` events);
* :mod:`.routes` — the ``/api/v1`` routes (``command`` scope).
"""

from __future__ import annotations

from cloud_sync.central.commands.ledger import COMMANDS_DB, CommandLedger
from cloud_sync.central.commands.publisher import (
    CommandPublisher,
    IngestMqttPublisher,
    MqttCommandPublisher,
    command_topic,
)
from cloud_sync.central.commands.routes import command_router
from cloud_sync.central.commands.service import CommandService
from cloud_sync.central.commands.states import STATES

__all__ = [
    "COMMANDS_DB",
    "STATES",
    "CommandLedger",
    "CommandPublisher",
    "CommandService",
    "IngestMqttPublisher",
    "MqttCommandPublisher",
    "command_router",
    "command_topic",
]

"""BACnet/IP plant simulator on bacpypes3: devices with AI/AO/AV/BI/BO/BV/MSV objects, COV,
commandable objects with a real priority array, physics models (air handler, chilled-water
plant, smoke-control fans) and faults; several devices on one IP with distinct UDP ports.

``BacnetSimulator`` (``server``) is the async context manager tests, benches and the demo use;
``python -m simulators.bacnet --devices N --base-port P`` runs one from the command line.
"""

from simulators.bacnet.device import FAULTS, SimDevice
from simulators.bacnet.models import MODELS, AirHandler, ChillerPlant, Model, PointBank, SmokeFans
from simulators.bacnet.objects import ObjectSpec
from simulators.bacnet.server import BacnetSimulator, SimSpec

__all__ = [
    "FAULTS",
    "MODELS",
    "AirHandler",
    "BacnetSimulator",
    "ChillerPlant",
    "Model",
    "ObjectSpec",
    "PointBank",
    "SimDevice",
    "SimSpec",
    "SmokeFans",
]

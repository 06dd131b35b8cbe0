"""OPC UA plant simulator: a pump station and a lift group controller on an asyncua server with
its own certificate, secure policies only (unless started insecure), users, and faults.

::

    async with OpcUaSimulator([PumpStation(), LiftGroup()], pki_dir=tmp) as sim:
        print(sim.endpoint)             # opc.tcp://127.0.0.1:PORT/gatehouse/sim
        await sim.set("PumpStation1", "Pressure", 0.08)
        await sim.restart(down_s=1.0)
"""

from simulators.opcua.models import SCENARIOS, BenchBlock, LiftGroup, Model, PumpStation, Variable
from simulators.opcua.server import APPLICATION_URI, NAMESPACE, OpcUaSimulator, SessionCounts

__all__ = [
    "APPLICATION_URI",
    "NAMESPACE",
    "SCENARIOS",
    "BenchBlock",
    "LiftGroup",
    "Model",
    "OpcUaSimulator",
    "PumpStation",
    "SessionCounts",
    "Variable",
]

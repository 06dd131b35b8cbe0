"""From configured points to ``PointPlan``s: bacpypes3 object identifiers and the COV deadband
(the report policy's absolute deadband, in the device's units)."""

from __future__ import annotations

from collections.abc import Sequence

from drivers.bacnet.config import BacnetPointConfig
from drivers.bacnet.device import PointPlan
from drivers.bacnet.link import BacnetLink
from drivers.config_base import ReportPolicy

__all__ = ["plan_points"]


def plan_points(
    link: BacnetLink, points: Sequence[BacnetPointConfig], report: ReportPolicy
) -> list[PointPlan]:
    plans: list[PointPlan] = []
    for point in points:
        policy = point.report or report
        deadband = policy.deadband_abs
        if deadband is not None and point.scale not in (0, 1):
            deadband = deadband / abs(point.scale)
        plans.append(PointPlan(point, link.objid(point.object_type, point.instance), deadband))
    return plans

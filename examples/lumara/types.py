"""Typed records of the Lumara domain: specialist subtasks, their results, and site facts.

Field names of the results are the feature names dreaming learns rules over
(`output.slope_deg`, `output.sensor`, `output.go`, ...), so they stay stable.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Sensor = Literal["optical", "lidar"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SiteAttributes(_Record):
    """What orbital products say about a candidate site and its approach."""

    slope_deg: float = Field(description="mean slope over the site at orbital resolution (~5 m/px), degrees")
    roughness_m: float = Field(description="RMS height residual after removing a plane, within 50 m, metres")
    shadow_fraction: float = Field(description="fraction of the site (50 m radius) in shadow at the landing sun")
    approach_shadow_fraction: float = Field(description="fraction of the last 1 km of approach ground track in shadow")
    rim_distance_m: float = Field(description="distance to the nearest catalogued fresh crater rim")
    cliff_distance_m: float = Field(description="distance to the nearest terrain steeper than 30°")
    relief_m: float = Field(description="largest terrain height difference from the site along the last 1 km of approach")
    earth_visible: bool = Field(description="Earth above the local horizon at the site (orbital DEM)")
    earth_clearance_deg: float = Field(description="how far Earth stands above the local horizon at the site (orbital DEM), degrees; negative when hidden")
    distance_to_target_m: float = Field(description="distance from the site to the science target")
    science_value: float = Field(description="0..1, science return expected from this site")


class SiteInfo(SiteAttributes):
    """A candidate site as listed by the mission planners."""

    site_id: str
    x_m: float
    y_m: float


class SiteTask(_Record):
    """Subtask for site selection: pick one candidate, avoiding excluded ones."""

    exclude_sites: list[str] = []
    note: str = ""


class SiteChoice(SiteAttributes):
    """The chosen site with its orbital attributes copied in, and why."""

    site_id: str
    rationale: str = ""


class DescentPlan(_Record):
    """A descent plan for one site: sensor, hazard-detection hover, divert, altimeter gate, terminal rate."""

    site_id: str
    sensor: Sensor
    hover_altitude_m: float = Field(ge=10, le=500)
    divert_budget_m: float = Field(ge=0, le=300)
    altimeter_rejection_m: float = Field(ge=5, le=2000)
    terminal_rate_mps: float = Field(gt=0, le=5)
    predicted_fuel_reserve_kg: float
    rationale: str = ""


class NavTask(_Record):
    """Subtask for navigation: plan the descent to the chosen site."""

    site: SiteChoice
    note: str = ""


class AssuranceTask(_Record):
    """Subtask for mission assurance: go/no-go on a plan; execute the landing only if `execute` and go."""

    site: SiteChoice
    plan: DescentPlan
    execute: bool = False
    note: str = ""


class AssuranceResult(_Record):
    """Go/no-go with its evidence; after an execution, the real outcome and telemetry."""

    go: bool
    predicted_success: float = Field(ge=0, le=1)
    predicted_fuel_reserve_kg: float
    contingencies: list[str] = []
    executed: bool = False
    outcome: str | None = None
    cause: str | None = None
    telemetry: dict[str, Any] | None = None
    rationale: str = ""


class MissionReport(_Record):
    """A whole mission as a lead would report it: the three results and the verdict-relevant facts."""

    seed: int
    site: SiteChoice | None = None
    plan: DescentPlan | None = None
    assurance: AssuranceResult | None = None
    attempts: int = 0

    @property
    def success(self) -> bool:
        a = self.assurance
        return bool(a and a.executed and a.cause == "none")


CAUSES = (
    "none",
    "tip_over",
    "hard_landing",
    "boulder_strike",
    "fuel_exhaustion",
    "nav_loss_shadow",
    "altimeter_rejection",
    "far_from_target",
    "no_earth_link",
    "no_power",
)

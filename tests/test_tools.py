"""`@tool`: signatures become JSON schemas; argument constraints are enforced."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import Field, ValidationError

from orchestra.tools import RunContext, tool


@tool
def hover(ctx: RunContext[None], altitude_m: Annotated[float, Field(ge=10, le=500)], sensor: str = "lidar") -> dict:
    """Hover at an altitude."""
    return {"altitude_m": altitude_m, "sensor": sensor}


def test_annotated_constraints_reach_the_schema_and_the_validator():
    prop = hover.input_schema["properties"]["altitude_m"]
    assert (prop["minimum"], prop["maximum"]) == (10, 500)
    assert hover.input_schema["required"] == ["altitude_m"] and "ctx" not in hover.input_schema["properties"]
    assert hover.call({"altitude_m": 80}, RunContext(deps=None)) == {"altitude_m": 80.0, "sensor": "lidar"}
    with pytest.raises(ValidationError):
        hover.call({"altitude_m": 5}, RunContext(deps=None))

"""The policy language's JSON Schema, for editors (``escalade policy schema``).

Pydantic writes the long forms; the loader also accepts short forms that people write
(``hours: 24/7``, ``holidays: DE``, ``"09:00-17:00"``, a member or path step as a name, a
target as ``4h``, a numeric condition as a number, a band's authority as one name,
``include:``). This adds those, so a policy that ``policy check`` accepts also validates
in an editor.
"""

from __future__ import annotations

from typing import Any

from escalade.policy.models import Policy

_DURATION = {"type": "string", "description": "A duration such as 15m, 1h30m, 2d"}
_NAME = {"type": "string", "description": "An id"}


def _either(schema: dict[str, Any], name: str, short: dict[str, Any]) -> None:
    defs = schema["$defs"]
    if name in defs:
        defs[name] = {"anyOf": [defs[name], short]}


def policy_json_schema() -> dict[str, Any]:
    schema = Policy.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Escalade policy"
    _either(
        schema,
        "TimeRange",
        {"type": "string", "pattern": r"^\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*$"},
    )
    _either(schema, "Member", _NAME)
    _either(schema, "PathStep", _NAME)
    _either(schema, "Target", {"anyOf": [_DURATION, {"type": "number", "const": 0}]})
    _either(schema, "Range", {"type": "number"})
    defs = schema["$defs"]
    cal = defs.get("Calendar")
    if cal is not None:
        cal["properties"]["hours"] = {
            "type": "string",
            "description": "'24/7' or a span such as 'mon-fri 09:00-18:00'",
        }
        cal["properties"]["holidays"] = {
            "anyOf": [cal["properties"]["holidays"], {"type": "string"}]
        }
        cal["required"] = [r for r in cal.get("required", []) if r != "weekly"]
    band = defs.get("Band")
    if band is not None:
        band["properties"]["authority"] = {"anyOf": [band["properties"]["authority"], _NAME]}
    schema["properties"]["include"] = {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        "description": "Policy files merged underneath this one (paths relative to it)",
    }
    return schema

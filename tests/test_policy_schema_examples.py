"""The example policies validate against the published JSON Schema (what editors use)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from escalade.policy.schema import policy_json_schema

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples" / "policies").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_against_schema(path: Path) -> None:
    data = json.loads(json.dumps(yaml.safe_load(path.read_text("utf-8")), default=str))
    jsonschema.Draft202012Validator(policy_json_schema()).validate(data)

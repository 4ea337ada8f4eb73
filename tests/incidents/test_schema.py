"""REPORT_SCHEMA: strict, valid, published as docs/why.schema.json, and every report fits."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from rollsafe.incidents.render import render_json
from rollsafe.incidents.report import build_report
from rollsafe.incidents.schema import REPORT_SCHEMA, schema_text
from tests.incidents._handmade import SCENARIOS, T0, episode_for

DOCS = Path(__file__).resolve().parents[2] / "docs" / "why.schema.json"
VALIDATOR = jsonschema.Draft202012Validator(
    REPORT_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def _document(name: str, *, episode: bool = True) -> dict[str, Any]:
    ev = SCENARIOS[name]()
    report = build_report(ev, episode_for(ev) if episode else None, now=T0 + 3600)
    loaded: dict[str, Any] = json.loads(render_json(report))
    return loaded


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(REPORT_SCHEMA)
    assert REPORT_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_docs_publish_the_schema() -> None:
    assert DOCS.read_text(encoding="utf-8") == schema_text()
    assert json.loads(DOCS.read_text(encoding="utf-8")) == REPORT_SCHEMA


@pytest.mark.parametrize("episode", [True, False], ids=["episode", "window"])
@pytest.mark.parametrize("name", sorted(SCENARIOS), ids=sorted(SCENARIOS))
def test_every_scenario_validates(name: str, episode: bool) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(_document(name, episode=episode))]
    assert errors == []


def _break(doc: dict[str, Any], how: str) -> dict[str, Any]:
    broken = copy.deepcopy(doc)
    if how == "extra-top-level-key":
        broken["verdict"] = "human error"
    elif how == "missing-required-key":
        del broken["impact"]["statuses"]
    elif how == "uncited-why":
        broken["whys"][0]["evidence"] = []
    elif how == "unknown-action-type":
        broken["actions"][0]["type"] = "blame"
    elif how == "status-not-a-code":
        broken["impact"]["statuses"] = {"5xx": 3}
    elif how == "extra-evidence-key":
        broken["evidence"][0]["data"] = {"value": "x"}
    elif how == "bad-time":
        broken["timeline"][0]["time"] = "yesterday"
    return broken


@pytest.mark.parametrize(
    "how",
    [
        "extra-top-level-key",
        "missing-required-key",
        "uncited-why",
        "unknown-action-type",
        "status-not-a-code",
        "extra-evidence-key",
        "bad-time",
    ],
)
def test_schema_is_strict(how: str) -> None:
    doc = _document("a")
    assert VALIDATOR.is_valid(doc)
    assert not VALIDATOR.is_valid(_break(doc, how))

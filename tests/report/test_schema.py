"""results.schema.json: every node says what it is, and the document points at the schema of its version."""

from __future__ import annotations

import json
from importlib.resources import files

from audit import SCHEMA_VERSION
from audit.report.writers.results_json import SCHEMA_URI

SCHEMA = json.loads(files("audit").joinpath("schema/results.schema.json").read_text())
CHILDREN = ("properties", "$defs", "patternProperties")


def _nodes(node, path="#"):
    """Every subschema of ``node`` with its JSON pointer."""
    yield path, node
    for key in CHILDREN:
        for name, sub in (node.get(key) or {}).items():
            yield from _nodes(sub, f"{path}/{key}/{name}")
    for key in ("items", "additionalProperties", "not"):
        sub = node.get(key)
        if isinstance(sub, dict):
            yield from _nodes(sub, f"{path}/{key}")
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, sub in enumerate(node.get(key) or ()):
            yield from _nodes(sub, f"{path}/{key}/{i}")


def test_every_schema_node_has_a_description():
    nodes = list(_nodes(SCHEMA))
    assert len(nodes) > 100
    missing = [p for p, n in nodes if not str(n.get("description") or "").strip()]
    assert missing == []


def test_schema_id_version_and_pointer_agree():
    assert SCHEMA["$id"] == SCHEMA_URI
    assert SCHEMA_URI.endswith(f"results-{SCHEMA_VERSION}.json")
    assert SCHEMA["properties"]["schema_version"]["pattern"].startswith("^" + SCHEMA_VERSION.split(".")[0])

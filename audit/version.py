"""The tool's version and the results.json schema version (ground floor: every layer may read them)."""

__version__ = "0.2.0"
SCHEMA_VERSION = "2.0"  # results.json; 2.0: $schema, rules[].criterion/description, explainers[].parameters

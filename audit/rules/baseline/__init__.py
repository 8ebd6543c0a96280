"""The comparison-phase rule kinds: each reads the diff against a baseline report (``evidence.comparison``)."""

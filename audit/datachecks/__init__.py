"""Data-level confounder checks: run before the model, they ask whether an image property or a metadata column
alone predicts the label, and whether images repeat across classes or between the training and held-out sets."""

from .stage import DataChecks, DuplicatePair, PropertyCheck, run_datachecks

__all__ = ["DataChecks", "DuplicatePair", "PropertyCheck", "run_datachecks"]

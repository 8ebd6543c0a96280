"""Data-level confounder checks: computed in one model-free pass over the held-out set (which also gives the data
fingerprint), they ask whether an image property or a metadata column alone predicts the label, and whether images
repeat across classes or between the training and held-out sets."""

from .stage import DataChecks, DuplicatePair, PropertyCheck, check_data, run_datachecks, run_pass

__all__ = ["DataChecks", "DuplicatePair", "PropertyCheck", "check_data", "run_datachecks", "run_pass"]

"""One error hierarchy. The CLI maps every AuditError to exit code 2 with a one-line message."""

from __future__ import annotations


class AuditError(Exception):
    """Base class for errors caused by bad input or usage (exit code 2)."""


class ConfigError(AuditError):
    """The config file or a rule pack is invalid."""


class DataError(AuditError):
    """The held-out set (manifest, image folder, an image, a ROI) is invalid."""


class ModelError(AuditError):
    """The model cannot be loaded or behaves unlike a classifier."""


class ExplainerError(AuditError):
    """An explainer cannot run on this model or produced unusable output."""


class RenderError(AuditError):
    """A report could not be written."""

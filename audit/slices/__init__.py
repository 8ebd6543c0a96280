"""Slice discovery (issue 30): failure slices nobody annotated, found with Domino's error-aware mixture model on
the model's own features, tested on samples the mixture never saw, described by metadata and image properties,
and exported as a manifest column a later audit re-checks as a named subgroup. Plain arrays in, frozen results
out; ``stage.run_slices`` runs it in the audit for [slices] (rule kind slice_gap_max)."""

from .describe import ColumnSeparation, SliceDescription, describe_slice, image_property_columns, typical_members
from .discover import Discovery, DiscoverySettings, Slice, discover_slices
from .export import membership_column, slice_column, with_slice_column
from .inputs import SliceInputError, SliceInputs
from .mixture import MixtureFit, Term, fit_mixture, responsibilities
from .stats import GapTest

__all__ = [
    "ColumnSeparation", "Discovery", "DiscoverySettings", "GapTest", "MixtureFit", "Slice", "SliceDescription",
    "SliceInputError", "SliceInputs", "Term", "describe_slice", "discover_slices", "fit_mixture",
    "image_property_columns", "membership_column", "responsibilities", "slice_column", "typical_members",
    "with_slice_column",
]

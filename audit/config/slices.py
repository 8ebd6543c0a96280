"""The [slices] section: failure slices nobody annotated, found on the model's own penultimate features (Domino's
error-aware mixture, audit/slices/). Off unless configured; an empty ``[slices]`` table runs the defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from .model_data import _Strict


class SlicesConfig(_Strict):
    """Slice discovery settings (defaults as Domino's ``discover``, tested on bench/slices_run.py)."""

    min_size: int = Field(default=10, ge=2, le=1_000_000, description="confirmation samples a component needs to be "
                          "tried as a slice (the smallest slice the audit reports)")
    n_components: Annotated[int, Field(ge=1, le=500)] | Literal["auto"] = Field(
        default="auto", description="mixture components; 'auto': as many as give each about 2 x min_size samples in "
        "the smaller of the fit and confirmation parts, at most Domino's 25 (audit/slices/discover.py: "
        "auto_components)")
    n_pca: int = Field(default=128, ge=1, le=4096, description="PCA components of the embedding")
    fit_fraction: float = Field(default=0.5, gt=0, lt=1, description="share of each class the mixture is fitted on; "
                                "the rest (never seen by the fit) gives every statistic")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="level of the one-sided gap test after correction")
    correction: Literal["holm", "bh"] = Field(default="holm", description="Holm (family-wise) or Benjamini-Hochberg "
                                              "(false-discovery rate) over the slices tried")
    second_embedding: Path | None = Field(
        default=None, description="an .npz file with 'ids' (the audit's sample ids) and 'vectors' (one row each): a "
        "second embedding of the held-out samples (another model's features, a descriptor), reduced beside the "
        "model's own")
    label: str | None = Field(default=None, description="multi-label audits: the label whose correctness is sliced")
    columns: list[str] | None = Field(default=None, description="metadata columns that may describe a slice "
                                      "(AUC of the column alone at telling members); default: every column")
    image_properties: bool = Field(default=False, description="also describe slices by the data checks' pixel "
                                   "properties (brightness, contrast, sharpness, noise, colour casts): decodes every "
                                   "held-out image once more")
    typical: int = Field(default=8, ge=1, le=32, description="most typical members shown per slice")
    shown: int = Field(default=5, ge=1, le=50, description="worst slices drawn in the report (results.json keeps all)")
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1, description="default: the audit's seed")

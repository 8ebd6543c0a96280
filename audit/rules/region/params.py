"""The settings of a confounder_region rule, and the words and criteria its findings use."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..base import Criterion, RuleParams
from ..shortcut_classes import ACQUISITION, COLOUR

RegionName = Literal["top_left", "top_right", "bottom_left", "bottom_right", "border", "top_bottom", "left_right",
                     "top", "bottom", "left", "right", "full", "outside_roi"]


class BoxRegion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    box: tuple[float, float, float, float] = Field(description="x0, y0, x1, y1 (x1, y1 exclusive)")
    units: Literal["px", "fraction"] = Field(default="px", description="model-input pixels or fractions of the image")
    name: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> BoxRegion:
        x0, y0, x1, y1 = self.box
        if not (x1 > x0 >= 0 and y1 > y0 >= 0):
            raise ValueError(f"box {self.box} must have 0 <= x0 < x1 and 0 <= y0 < y1")
        if self.units == "fraction" and (x1 > 1 or y1 > 1):
            raise ValueError(f"box {self.box} in units 'fraction' must lie within 0..1")
        return self


Replace = Literal["swap", "colour", "spectrum", "acquisition", "mean", "blur", "noise", "greyscale"]
AcquisitionEdit = Literal["spectrum", "resolution", "blur", "jpeg", "noise"]


class ConfounderRegionParams(RuleParams):
    regions: list[RegionName | BoxRegion] = Field(default_factory=list)
    sweep: bool = Field(default=False, description="test every corner, the border frame and both band pairs")
    size: float = Field(default=0.25, gt=0.0, le=1.0, description="corner box side, fraction of the image side")
    size_px: int | None = Field(default=None, ge=1, description="corner box side in pixels (overrides size)")
    band: float = Field(default=0.1, gt=0.0, lt=0.5, description="border band width, fraction of the image side")
    band_px: int | None = Field(default=None, ge=1, description="border band width in pixels (overrides band)")
    margin: float = Field(default=0.05, ge=0.0, le=0.5,
                          description="outside_roi: ROIs grown by this fraction of the shorter image side")
    explainer: str = "gradcam"
    attribution: bool = Field(default=True, description="report the attribution share in each region (not judged)")
    scope: Literal["correct", "picks", "all"] = "correct"
    n: int | None = Field(default=100, ge=1, description="at most n samples per group (seeded)")
    replace: Replace = "swap"
    acquisition: list[AcquisitionEdit] = Field(
        default_factory=lambda: ["spectrum", "resolution", "blur", "jpeg", "noise"],
        description="replace = 'acquisition': the edits, each its own cell: the high-frequency spectrum (both "
        "directions), and the resolution, blur, JPEG blocking and noise levels of the group's images given to "
        "others (insertion only: a degradation cannot be taken away)")
    object_apart: bool = Field(default=True, description="with ROIs, a colour, spectrum or acquisition edit of "
                               "'full' acts on the background (judged) and, separately, on the object (reported, "
                               "not judged): the object's own colour and texture may differ between classes")
    max_statistic_auc: float = Field(default=0.6, gt=0.5, le=1.0, description="without ROIs, a whole-image "
                                     "statistic edit is judged only where the statistic it moves tells no group "
                                     "apart (ROC AUC below this): else it would move the object's own statistics "
                                     "with any cue, and the rule is not applicable")
    sequential: bool = Field(default=True, description="donor and level edits look after 20, 40, … samples and "
                             "stop once the interval clears the limit (O'Brien-Fleming-type group-sequential "
                             "test); false: one look, every sample of a measured direction edited")
    refine: bool = Field(default=True, description="when overlapping regions fail, test their overlaps and name "
                         "the smallest region that still carries the effect")
    donors_per_class: int = Field(default=50, ge=2, description="donor images drawn per group (seeded)")
    match_context: bool = Field(default=True, description="donors (test and control) are drawn among the "
                                "match_k most like the sample in what the edit does not move (pixels around "
                                "a swapped region; layout and sharpness for colour; layout and colour for "
                                "spectrum)")
    match_k: int = Field(default=5, ge=1)
    match_quantile: float | None = Field(default=0.95, gt=0.0, le=1.0, description="colour and spectrum edits: "
                                         "a donor may be no farther from the sample (in what the edit does not "
                                         "move) than this quantile of the pool's nearest same-group distances; "
                                         "samples without one are left out and counted (None: no limit)")
    blur_sigma: float = Field(default=0.1, gt=0.0, description="blur sigma, fraction of the shorter image side")
    cutoff: float = Field(default=0.5, gt=0.0, lt=1.5, description="spectrum: radial frequency (fraction of "
                          "Nyquist) above which amplitudes come from the donor")
    criterion: Literal["prob_drop", "flip_rate"] = "prob_drop"
    max_prob_drop: float = Field(default=0.1, ge=0.0, le=1.0, description="limit on the excess score change (the smaller direction)")
    max_flip_rate: float = Field(default=0.2, ge=0.0, le=1.0, description="limit on the excess flip rate")
    max_share: float = Field(default=0.5, ge=0.0, le=1.0,
                             description="attribution share counted per cell (information, not judged)")
    max_roi_overlap: float = Field(default=0.25, ge=0.0, le=1.0,
                                   description="leave out samples whose ROI covers more of the region than this")
    min_samples: int = Field(default=5, ge=2, description="cells with fewer samples are reported, not judged")
    bootstrap: int = Field(default=1000, ge=100, description="resamples of the excess's interval")

    @model_validator(mode="after")
    def _something(self) -> ConfounderRegionParams:
        if not self.regions and not self.sweep:
            raise ValueError("give regions (e.g. ['top_left', 'border']) or sweep = true")
        if self.replace == "acquisition" and not self.acquisition:
            raise ValueError("acquisition: name at least one edit")
        if self.replace == "swap" and "full" in self.regions:
            raise ValueError("region 'full' cannot be swapped (that replaces the whole image); use replace = "
                             "'colour' for a colour cast or 'spectrum' for acquisition quality")
        return self


EDIT_WORDS = {"colour": "colour statistics", "spectrum": "the high-frequency spectrum", "swap": "the region",
              "acquisition": "the acquisition (spectrum, resolution, blur, JPEG blocking, noise)"}
MATCHED_ON = {"colour": "layout and sharpness", "spectrum": "layout and colour", "acquisition": "layout and colour"}
CLASSES_OF_EDIT = {"colour": (COLOUR.key,), "greyscale": (COLOUR.key,), "spectrum": (ACQUISITION.key,),
                   "acquisition": (ACQUISITION.key,)}
# what a donor or level edit gives a sample, in words ({r}: the region)
EDIT_PHRASES = {"swap": "the {r}", "colour": "the colour statistics of the {r}",
                "spectrum": "the high-frequency spectrum (sharpness, noise, compression) of the {r}",
                "resolution": "the resolution of the {r}", "blur": "the blur of the {r}",
                "jpeg": "the JPEG blocking of the {r}", "noise": "the noise level of the {r}"}
CRITERIA = {
    "prob_drop": Criterion("excess score change", "the group's score: drop when the region is taken away, rise when "
                           "it is given to other groups; test minus control, the smaller direction for donor edits (0–1)",
                           "above",
                           "and the 95 % interval's lower end > 0 (donor edits: in both directions; sampled until "
                           "the interval clears the limit)"),
    "flip_rate": Criterion("excess flip rate", "share of decisions flipped (away from the group, or to it), test "
                           "minus control", "above",
                           "and the 95 % interval's lower end > 0 (donor edits: in both directions; sampled until "
                           "the interval clears the limit)"),
}

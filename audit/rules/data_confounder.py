"""data_confounder: does an image property or a metadata column alone predict a class? (data level, no model)

Reads the data-checks stage's product (``evidence.data``): for every property (brightness, contrast,
sharpness, noise, JPEG blocking and quality, border darkness, colour balance, aspect ratio, pixel count, file
format, bit depth) and every metadata column, the cross-validated ROC AUC of a small model on that property
alone, per group, with a DeLong 95 % interval. A property is flagged for a group when the interval's lower end
is above ``max_auc`` (Zech et al. 2018: the hospital alone predicted pneumonia with AUC 0.861); the rule fails
on the property and group with the highest lower end.

This says what the *data* allows a model to learn, not what the model learned: the counterfactual rules
(``confounder_region`` with ``colour`` / ``spectrum`` / ``swap``, ``confounder_metadata``) test whether the model
uses it, and the report puts each flagged property next to them. When the held-out set has ROIs, pixel
properties are measured on the context (outside the object); without ROIs they include the object itself, so a
class whose objects are larger or edgier differs in "sharpness" or "noise" for no shortcut reason.
"""

from __future__ import annotations

from pydantic import Field

from ..products import Finding, Severity
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence
from .shortcut_classes import DATA_PROPERTY

CRITERION = Criterion("property AUC (lower end of the 95 % interval)", "ROC AUC of the property alone, "
                      "cross-validated", "above")
PROPERTY_CLASS = {"brightness": "colour", "contrast": "colour", "colour_red_blue": "colour", "colour_green": "colour",
                  "sharpness": "acquisition", "noise": "acquisition", "blockiness": "acquisition",
                  "jpeg_quality": "acquisition", "border_darkness": "fixed_position", "aspect_ratio": "acquisition",
                  "pixels": "acquisition", "file_format": "acquisition", "bit_depth": "acquisition"}


class DataConfounderParams(RuleParams):
    severity: Severity = "warning"
    max_auc: float = Field(default=0.7, ge=0.5, le=1.0, description="a property is flagged when the lower end of "
                           "its AUC interval is above this")
    properties: list[str] = Field(default_factory=list, description="properties / metadata columns judged; empty = all")
    exclude: list[str] = Field(default_factory=list, description="properties / columns left out (e.g. a column that "
                               "is meant to predict the label)")


class DataConfounder(Rule[DataConfounderParams]):
    kind = "data_confounder"
    title = "An image property or metadata column alone predicts the label"
    criterion = CRITERION
    shortcuts = (DATA_PROPERTY,)

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        dc = evidence.data
        if dc is None:
            return [self.not_applicable("the data checks did not run (no data-checks product in the evidence)")]
        if not dc.ran("properties") and not dc.ran("metadata"):
            return [self.not_applicable("image properties and metadata columns were not checked (data.checks)")]
        known = {c.name for c in dc.properties}
        unknown = [n for n in [*p.properties, *p.exclude] if n not in known]
        if unknown:
            return [self.error(f"unknown property or column {', '.join(map(repr, unknown))}; known: "
                               f"{', '.join(sorted(known))}")]
        checks = [c for c in dc.properties if (not p.properties or c.name in p.properties) and c.name not in p.exclude]
        rows = []
        for c in checks:
            for g in c.per_group:
                if g["auc"] is not None:
                    rows.append((g["ci95"][0], g["auc"], g["ci95"][1], c, g["group"]))
        if not rows:
            return [self.not_applicable("no property could be judged (too few images per group, or every property "
                                        "constant)")]
        rows.sort(key=lambda t: (-t[0], -t[1], t[3].name))
        flagged = [r for r in rows if r[0] > p.max_auc]
        lo, auc, hi, c, group = rows[0]
        where = f"for '{group}', {c.name} ({c.description}; {c.source})"
        msg = (f"{CRITERION.lead(lo, p.max_auc, where)}: the {c.name} of an image alone predicts '{group}' with "
               f"cross-validated AUC {auc:.2f} (95 % interval {lo:.2f}–{hi:.2f}).")
        if flagged:
            others = sorted({f"{r[3].name} → '{r[4]}' ({r[1]:.2f})" for r in flagged[1:]})
            msg += (f" {len(flagged)} property/group pair(s) over the limit"
                    + (f"; also: {', '.join(others[:8])}" if others else "") + ". "
                    "This is what the data allows a model to learn; whether this model uses it is tested by the "
                    "counterfactual and metadata rules (see the data-checks section).")
        else:
            msg += " No property predicts a group beyond the limit."
        details = {"flagged": [{"property": r[3].name, "group": r[4], "auc": r[1], "ci95": [r[0], r[2]],
                                "source": r[3].source, "shortcut_class": PROPERTY_CLASS.get(r[3].name, "metadata")}
                               for r in flagged],
                   "n_properties": len(checks)}
        return [self.finding(bool(flagged), msg, lo, p.max_auc, details=details)]

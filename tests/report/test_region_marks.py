"""A region finding's evidence images draw the region it judged (magenta) and, when smaller, the region that
carries the effect (cyan) as solid rings outside each region; the ROI keeps its dashed ring; a legend names them."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from audit.drawing import figures
from audit.report.context.document import _region_marks

DETAILS = {"judged_region": {"key": "border", "label": "border frame 4 px",
                             "boxes": [[0, 0, 32, 4], [0, 4, 4, 28], [28, 4, 32, 28], [0, 28, 32, 32]]},
           "named_region": {"key": "top_left&border", "boxes": [[0, 0, 8, 8]],
                            "label": "box x 0–8, y 0–8 px, where the border frame 4 px and the top left box overlap"}}


def _pixels(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")) / 255.0


def test_marks_and_legend_come_from_the_details_boxes():
    marks, legend = _region_marks(DETAILS, (32, 32))
    assert [m.sum() for m, _ in marks] == [32 * 32 - 24 * 24, 64]
    assert [rgb for _, rgb in marks] == [figures.JUDGED_RGB, figures.CARRIER_RGB]
    assert [k["text"] for k in legend] == ["the region judged: border frame 4 px",
                                           "the smaller region that carries the effect: box x 0–8, y 0–8 px"]
    same = {**DETAILS, "named_region": {**DETAILS["judged_region"]}}
    assert len(_region_marks(same, (32, 32))[0]) == 1  # the judged region carries it itself: drawn once
    per_sample = {"judged_region": {"key": "background", "label": "background", "per_sample": "background"}}
    assert _region_marks(per_sample, (32, 32)) == ([], [])  # each image's ROI is drawn already


def test_the_carrier_ring_lies_just_outside_its_box():
    image = np.full((32, 32), 0.5)
    marks, _ = _region_marks(DETAILS, (32, 32))
    px = _pixels(figures.image_cell(image, None, size=128, marks=marks[1:]))  # the 8 px box at 4x: 32 display px
    ring = np.all(np.isclose(px, figures.CARRIER_RGB, atol=0.01), axis=2)
    assert ring[32, :32].all() and ring[:32, 32].all()  # the row and column just past the box
    assert not ring[:32, :32].any() and not ring[40:, 40:].any()  # nothing inside it, nothing far from it

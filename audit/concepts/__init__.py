"""Concept tests with TCAV (Kim et al. 2018): does the model use a concept a reviewer names ("ruler", "site text",
"watermark") for a class?

- ``cav.py``: the CAV classifier (a captum ``Classifier``) and the row-space shortcut for wide layers,
- ``activations.py``: layer activations and directional derivatives of class logits,
- ``tcav.py``: TCAV scores on tensors (CAVs against N random sets, random CAVs for the null distribution),
- ``stats.py``: the two-sided t-test and Bonferroni,
- ``stage.py``: the audit stage (``[concepts]`` in the config -> ``ConceptRun``),
- ``result.py``: the stage's product, read by the ``concept_reliance`` rule, results.json and the report.
"""

from .result import ConceptInfo, ConceptRun, ConceptTest, LayerCAVs

__all__ = ["ConceptInfo", "ConceptRun", "ConceptTest", "LayerCAVs"]

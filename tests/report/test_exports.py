"""The documentation exports against the formats they claim: model_card.json validates against the Model Card
Toolkit 0.0.2 JSON schema (vendored), model_card.md holds every section of the Hugging Face template that
huggingface_hub ships and front matter ModelCardData reads, neither markdown export holds an invisible or escaping
character inside a value a person copies (an e-mail address, a time, a hash), and Annex IV is prose and tables,
never raw JSON. (Issue: an extra top-level key, the SPDX id under custom_text, six missing sections, U+2060 inside
e-mail addresses and times, JSON for the compute settings.)"""

from __future__ import annotations

import json
import re

import pytest
from lint import copy_problems, hf_template_sections, model_card_json_problems, model_card_md_problems, rendered_text
from report_helpers import results, rule

from audit.config import ModelCardConfig
from audit.report.criteria import verdict_sentence
from audit.report.writers.annex_iv import build_annex_iv
from audit.report.writers.model_card import build_model_card

CARD = ModelCardConfig(owner="Imaging AI team", contact="ml.audits@example.org", license="Apache-2.0",
                       references=["https://example.org/paper", "Internal report IR-12"], citation="Doe et al. 2025",
                       intended_use="Triage of chest radiographs: a second reader, never the only one.",
                       description="A small CNN.")
SHA = "ab" * 32
STARTED, FINISHED = "2025-01-02T03:04:05+00:00", "2025-01-02T03:05:07+00:00"


def _doc() -> dict:
    res = results([rule("acc", "fail", "accuracy 0.5 < 0.9", value=0.5, threshold=0.9), rule("ok", "pass")],
                  started=STARTED, finished=FINISHED)
    res["rules"][0]["criterion"] = {"name": "accuracy", "unit": "proportion, 0–1", "direction": "min", "source": "rule"}
    res["summary"]["reason"] = verdict_sentence(res)
    res["metrics"] = {"accuracy": 0.5, "accuracy_ci95": [0.4, 0.6], "ece": 0.05,
                      "per_class": [{"class": "a", "precision": 0.5, "recall": 0.25, "f1": 0.33}]}
    res["classes"] = ["a", "b"]
    res["provenance"].update(device="cpu", seed=0, compute={"autocast": "off", "channels_last": False, "batch_size": 16},
                             versions={"torch": "2.14.1"}, tool={"name": "model-audit", "version": "0.2.0"},
                             data={"n_scored": 10, "n_listed": 10, "manifest_sha256": "cd" * 32,
                                   "images_sha256": "ef" * 32})
    res["explainers"] = [{"name": "gradcam", "title": "Grad-CAM", "status": "ok",
                          "parameters": {"layer": "features.4", "layer_source": "default (last conv)"}}]
    return res


def test_model_card_json_validates_against_the_model_card_toolkit_schema():
    _, js = build_model_card(_doc(), CARD, SHA)
    doc = json.loads(js)
    assert model_card_json_problems(doc) == []
    assert doc["schema_version"] == "0.0.2" and set(doc) <= {"schema_version", "model_details", "model_parameters",
                                                            "quantitative_analysis", "considerations"}
    assert doc["model_details"]["licenses"] == [{"identifier": "Apache-2.0"}]  # an SPDX id, not custom text
    assert doc["model_details"]["references"] == [{"reference": "https://example.org/paper"}]  # URIs only
    assert {"style": "reference", "citation": "Internal report IR-12"} in doc["model_details"]["citations"]
    assert f"results.json SHA-256 {SHA}" in doc["model_details"]["documentation"]  # audit verify reads it
    prose = ModelCardConfig(license="Licensed to the hospital only, see contract 7")
    assert json.loads(build_model_card(_doc(), prose, SHA)[1])["model_details"]["licenses"] == [
        {"custom_text": "Licensed to the hospital only, see contract 7"}]


def test_the_validator_is_not_a_rubber_stamp():
    _, js = build_model_card(_doc(), CARD, SHA)
    doc = json.loads(js)
    assert model_card_json_problems({**doc, "model_audit": {}})  # the extra top-level key the issue found
    bad = json.loads(js)
    bad["model_details"]["licenses"] = [{}]
    assert model_card_json_problems(bad)
    bad = json.loads(js)
    bad["model_details"]["references"] = [{"reference": "not a uri"}]
    assert model_card_json_problems(bad)


def test_model_card_md_has_every_section_of_the_hugging_face_template():
    md, _ = build_model_card(_doc(), CARD, SHA)
    assert len(hf_template_sections()) >= 30
    assert model_card_md_problems(md) == []
    for heading in ("Training Details", "Environmental Impact", "Technical Specifications", "Citation",
                    "Model Card Contact", "How to Get Started with the Model"):
        assert f"## {heading}\n" in md
    gone = md.replace("## Environmental Impact\n", "## Environment\n")
    assert any("Environmental Impact" in p for p in model_card_md_problems(gone))


def test_values_a_person_copies_are_exact_in_the_file_and_on_screen():
    card_md, _ = build_model_card(_doc(), CARD, SHA)
    annex_md, _ = build_annex_iv(_doc(), CARD, SHA)
    for md in (card_md, annex_md):
        assert copy_problems(md) == []
        shown = rendered_text(md)
        assert "\u2060" not in md and STARTED in shown and FINISHED in shown and SHA in shown
    assert f"`{CARD.contact}`" in card_md and CARD.contact in rendered_text(card_md)  # raw and rendered
    assert f"`{STARTED}`" in card_md  # a time in a code span: no escape inside it in the file either


def test_annex_iv_is_prose_and_tables_not_json():
    md, js = build_annex_iv(_doc(), CARD, SHA)
    assert not re.search(r"[{}]", md), [line for line in md.splitlines() if re.search(r"[{}]", line)][:3]
    shown = " ".join(rendered_text(md).split())
    assert "autocast off, channels last off, batch size 16" in shown
    assert "layer features.4 (default (last conv))" in shown
    assert "| rule | kind | severity | status | measured against the limit |" in md  # the test log as a table
    assert json.loads(js)["sections"][1]["table"]["rows"][0][:4] == ["acc", "metric_min", "error", "fail"]


@pytest.mark.parametrize("contact", ["a_b@example.org", "x@y.z"])
def test_contact_is_copyable_whatever_it_holds(contact):
    md, _ = build_model_card(_doc(), ModelCardConfig(contact=contact), SHA)
    assert f"`{contact}`" in md and contact in rendered_text(md)

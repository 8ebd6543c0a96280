"""summary.md: verdict, blocking rules, model, rule counts, failing then warning rules and key metrics, short
enough for a pull-request comment or a CI step summary.

Every string that is not this module's own wording goes through :func:`audit.report.writers.text.md_text` (or
:func:`md_code` for identifiers): the file renders no link, image, HTML or autolink whatever the class names,
messages, sample ids or model metadata hold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ..criteria import headline_of, limit_words, number
from .base import OutputFormat, Report, utf8_text
from .family_text import family_lines
from .robustness_text import robustness_lines
from .slices_text import slices_lines
from .text import md_code, md_text

MAX_ROWS = 25  # rule rows in the table; the rest are counted, they are in report.html and results.json
MAX_MESSAGE = 300  # characters of a message in a table cell
MAX_NAME = 100
MAX_FLAG = 1500  # characters of one flag (a flag lists at most a few items, the rest counted)
#: GitHub's limit for a comment body (characters); summary.md stays under it, ending with where the rest is
COMMENT_LIMIT = 65_536
_RANK = {"fail": 0, "error": 1, "warn": 2}
_HEX = re.compile(r"[0-9a-fA-F]{12,}")


def _f(v: Any) -> str:
    return "—" if v is None else (f"{v:.4f}" if isinstance(v, float) else md_text(v, MAX_NAME))


def _is_number(x: Any) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))


def _measured(r: Mapping[str, Any]) -> tuple[str, str]:
    """("probability drop 0.276 > 0.200 (for 'seven', top-left corner)", "at most 0.200 · probability, 0–1") when
    the result names its criterion (the headline results.json states: comparison and subject), else the plain value
    and threshold."""
    crit, v, t = r.get("criterion"), r.get("value"), r.get("threshold")
    if r.get("status") == "error" and v is None:
        return "not evaluated", _f(t)
    if isinstance(crit, Mapping) and crit.get("name") and _is_number(v) and _is_number(t):
        c = {k: str(crit.get(k) or "") for k in ("name", "unit", "direction")}
        limit = f"{limit_words(c)} {number(t, c['unit'])}" + (f" · {c['unit']}" if c["unit"] else "")
        return md_text(headline_of(r), MAX_MESSAGE), md_text(limit, MAX_NAME)
    return _f(v), _f(t)


def _model_line(results: Mapping[str, Any]) -> str | None:
    model = (results.get("provenance") or {}).get("model") or {}
    named = " ".join(md_text(model[k], MAX_NAME) for k in ("name", "version") if model.get(k) not in (None, ""))
    parts = [named] if named else []
    digest = model.get("sha256")
    if isinstance(digest, str) and _HEX.fullmatch(digest):
        parts.append(f"sha256 `{digest[:12].lower()}`")
    elif digest:
        parts.append(f"sha256 {md_text(digest, 12)}")
    return "**Model:** " + " · ".join(parts) if parts else None


def _counts_line(results: Mapping[str, Any]) -> str:
    counts = (results.get("summary") or {}).get("rules") or {}
    return "**Rules:** " + " · ".join(f"{int(counts.get(s) or 0)} {s}" for s in ("fail", "error", "warn", "pass"))


def _rule_table(rules: list[Mapping[str, Any]], blocking: set[str]) -> list[str]:
    """Blocking results first, then failures, errors, warnings (pack order within each)."""
    bad = [r for r in rules if r.get("status") in _RANK]
    bad.sort(key=lambda r: (r.get("id") not in blocking, _RANK[r["status"]]))
    lines = ["| rule | status | measured against the limit | limit | message |", "|---|---|---|---|---|"]
    for r in bad[:MAX_ROWS]:
        status = f"**{md_text(r['status'])}** · blocking" if r.get("id") in blocking else md_text(r["status"])
        measured, limit = _measured(r)
        lines.append(f"| {md_code(r.get('id'))} | {status} | {measured} | {limit} "
                     f"| {md_text(r.get('message'), MAX_MESSAGE)} |")
    if len(bad) > MAX_ROWS:
        lines += ["", f"… and {len(bad) - MAX_ROWS} more (see report.html or results.json)."]
    return lines


def _comparison(comp: Mapping[str, Any]) -> list[str]:
    lines = ["", "Changes since baseline:"]
    for name, d in (comp.get("metrics") or {}).items():
        lines.append(f"- {md_text(name, MAX_NAME)}: {_f(d.get('baseline'))} → {_f(d.get('candidate'))} "
                     f"(Δ {_f(d.get('delta'))})")
    flips = comp.get("flips")
    if flips:
        lines.append(f"- flips: {_f(flips.get('to_wrong'))} right → wrong, {_f(flips.get('to_right'))} wrong → right")
    for name, e in (comp.get("explanations") or {}).items():
        if e.get("status") == "ok":
            lines.append(f"- {md_text(name, MAX_NAME)} maps of {_f(e.get('n_compared'))} shared picks: median "
                         f"Spearman {_f(e['spearman']['median'])}, median SSIM {_f(e['ssim']['median'])}")
    return lines


def _evidence_lines(results: Mapping[str, Any]) -> list[str]:
    """Explainers listed in the config that produced no maps (with the reason); a pack's downgrade of the
    completeness check is one of the flags (``_flags``)."""
    gone = [e for e in results.get("explainers") or () if e.get("status") != "ok"]
    if not gone:
        return []
    return ["**Explainers unavailable:** " + "; ".join(
        f"{md_code(e.get('name'))} ({md_text(e.get('reason') or 'no reason given', MAX_MESSAGE)})"
        for e in gone) + "  "]


def _blocking_lines(rules: list[Mapping[str, Any]], blocking: list[str]) -> list[str]:
    """What blocks the release, each with its headline (the comparison and the class, label or region judged)."""
    by_id = {str(r.get("id")): r for r in rules}
    shown = [by_id[b] for b in blocking if b in by_id][:MAX_ROWS]
    if not shown:
        return []
    return ["**What blocks the release:**", "",
            *(f"- {md_code(r.get('id'))}: {md_text(headline_of(r), MAX_MESSAGE)}" for r in shown), ""]


def _flags(results: Mapping[str, Any]) -> list[str]:
    """The flags results.json states (``summary.flags``: the ones the report's cover shows), one item each."""
    flags = [f for f in (results.get("summary") or {}).get("flags") or () if isinstance(f, Mapping)]
    if not flags:
        return []
    return ["**Flags:**", "", *(f"- {md_text(f.get('text'), MAX_FLAG)}" for f in flags), ""]


def build_summary(results: Mapping[str, Any], headline: str) -> str:
    """``headline``: the task's one line of key figures (escaped too: harmless, and it is free text)."""
    verdict = str(results["verdict"])
    icon = "✅" if verdict == "pass" else "❌"
    lines = [f"## {icon} model-audit {md_code(results['name'], MAX_NAME)}: **{md_text(verdict.upper())}**", ""]
    blocking = [str(b) for b in (results.get("summary") or {}).get("blocking") or ()]
    if blocking:
        shown = ", ".join(md_code(b) for b in blocking[:MAX_ROWS])
        more = f" and {len(blocking) - MAX_ROWS} more" if len(blocking) > MAX_ROWS else ""
        lines.append(f"**Blocking:** {shown}{more}  ")
    model = _model_line(results)
    if model:
        lines.append(model + "  ")
    lines += [*_evidence_lines(results), _counts_line(results), ""]
    reason = (results.get("summary") or {}).get("reason")
    if reason:
        lines += [md_text(reason, MAX_MESSAGE), ""]
    rules = list(results.get("rules") or ())
    lines += _blocking_lines(rules, blocking)
    lines += _flags(results)
    if any(r.get("status") in _RANK for r in rules):
        lines += _rule_table(rules, set(blocking))
    else:
        lines.append("Every rule passed.")
    lines += ["", md_text(headline)]
    robust = robustness_lines(results)
    if robust:
        lines += ["", "**Robustness:**", *(f"- {md_text(x, 2 * MAX_MESSAGE)}" for x in robust)]
    found = slices_lines(results)
    if found:
        lines += ["", "**Discovered slices:**", *(f"- {md_text(x, 2 * MAX_MESSAGE)}" for x in found)]
    family = family_lines(results)
    if family:
        lines += ["", "**Family of models:**", *(f"- {md_text(x, 2 * MAX_MESSAGE)}" for x in family)]
    comp = results.get("comparison")
    if comp:
        lines += _comparison(comp)
    return _fit("\n".join(lines) + "\n")


SHORTENED = ("\n… shortened to stay under GitHub's comment limit ({limit} characters): every rule result is in "
             "results.json and the full report in report.html, beside this file in the report folder.\n")


def _fit(md: str, limit: int = COMMENT_LIMIT) -> str:
    """``md`` when under ``limit`` characters, else cut at a line end with a last line saying where the rest is."""
    if len(md) < limit:
        return md
    tail = SHORTENED.format(limit=f"{limit:,}")
    cut = md.rfind("\n", 0, limit - len(tail) - 1)
    return md[:max(cut, 0)] + "\n" + tail


class SummaryOutput(OutputFormat):
    """summary.md, always written (a pull-request comment or CI step summary)."""

    name = "summary"
    title = "summary.md"
    files: ClassVar = {"summary": "summary.md"}
    parsers: ClassVar = {"summary.md": utf8_text}
    always = True
    selectable = False

    def write(self, report: Report, folder: Path) -> None:
        r = report.result
        (folder / "summary.md").write_text(build_summary(report.results, r.task.headline(r.metrics)), encoding="utf-8")

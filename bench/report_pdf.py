"""The demo report's PDF: how long writing report.pdf takes (target: <= 3 s), beside writing report.html from the
same context in the same process (the reference).

    python bench/report_pdf.py [DEMO_CONFIG] [--reps 3]

DEMO_CONFIG is a demo's audit.toml (``audit demo`` writes it in ``reports/demo-inputs``; default: that one, built
by ``audit demo`` when missing). The audit runs once; then the HTML and the PDF are rendered ``--reps`` times each,
interleaved, from one report context (built once, as ``write_outputs`` does). Prints a JSON line per rendering:
median and every wall time, the median CPU seconds of this process (the fair figure on a shared machine), pages,
bytes, and the PDF / HTML ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from pypdf import PdfReader

from audit.config import load_config
from audit.report.writers.base import Report
from audit.report.writers.render import HtmlOutput, PdfOutput, render_html
from audit.report.writers.results_json import build_results, dumps
from audit.runner import run_audit

TARGET_S = 3.0
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", nargs="?", type=Path, default=ROOT / "reports" / "demo-inputs" / "audit.toml")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="copy the last report.html and report.pdf into this folder, with the HTML the PDF is rendered from")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not args.config.exists():
        out = args.config.parent.parent / "demo"
        subprocess.run([sys.executable, "-m", "audit.cli", "demo", "--out", str(out)], check=False)
    result = run_audit(load_config(args.config, ["cache.enabled=false"]))
    formats = ("html", "pdf", "json")
    results = build_results(result)
    report = Report(result, formats, results, dumps(results))
    t0 = time.perf_counter()
    _ = report.context  # shared by both renderings (charts and figures drawn here, once)
    context_s = time.perf_counter() - t0
    times: dict[str, list[float]] = {"html": [], "pdf": []}
    cpu: dict[str, list[float]] = {"html": [], "pdf": []}  # this process's CPU seconds: fair on a shared machine
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in range(args.reps):
            for name, fmt in (("html", HtmlOutput()), ("pdf", PdfOutput())):
                t, c = time.perf_counter(), time.process_time()
                fmt.write(report, folder)
                times[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
        pdf = folder / "report.pdf"
        pages, size = len(PdfReader(pdf).pages), pdf.stat().st_size
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for name in ("report.html", "report.pdf"):
                shutil.copy(folder / name, args.keep / name)
            (args.keep / "report-pdf-mode.html").write_text(render_html(report.context, mode="pdf"), encoding="utf-8")
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(json.dumps({"rendering": "context (figures, once)", "seconds": round(context_s, 3)}))
    print(json.dumps({"rendering": "report.html", "median_s": round(med["html"], 3),
                      "times_s": [round(x, 3) for x in times["html"]], "median_cpu_s": round(med_cpu["html"], 3)}))
    print(json.dumps({"rendering": "report.pdf", "median_s": round(med["pdf"], 3),
                      "times_s": [round(x, 3) for x in times["pdf"]], "median_cpu_s": round(med_cpu["pdf"], 3),
                      "pages": pages, "bytes": size,
                      "pdf_over_html": round(med["pdf"] / med["html"], 2), "target_s": TARGET_S,
                      "meets_target": med["pdf"] <= TARGET_S}))


if __name__ == "__main__":
    main()

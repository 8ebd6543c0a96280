"""Command line: `audit run`, `audit demo`, `audit verify`, `audit list`.

Exit codes: 0 verdict pass; 1 verdict fail (a blocking rule failed or could not be evaluated);
2 bad input or usage (one-line message naming the file, row or field); 3 internal error (a bug: rerun
with --debug and report it).
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Annotated

import typer

from .errors import AuditError
from .signals import EXIT_TERMINATED, Terminated, sigterm_raises
from .signals import MESSAGE as TERMINATED_MESSAGE
from .timing import Timings, format_rows

EXIT_PASS, EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Audit a trained PyTorch image model (classifier, multi-label, segmentation or anomaly detector) before it ships.")

DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
ProfileOpt = Annotated[bool, typer.Option("--profile", help="Print where the time went: wall and CPU seconds, model "
                                                            "passes and images per stage, rule and explainer (as "
                                                            "timings.json records them) on stderr.")]


def _fail(e: BaseException, debug: bool) -> int:
    if isinstance(e, AuditError):
        if debug:
            traceback.print_exc()
        one_line = " ".join(ln.strip() for ln in str(e).splitlines() if ln.strip())  # the contract: one line
        typer.echo(f"error: {one_line}", err=True)
        return EXIT_INPUT
    if isinstance(e, KeyboardInterrupt):
        typer.echo("interrupted: no report was written", err=True)
        return 130
    if isinstance(e, Terminated):
        typer.echo(TERMINATED_MESSAGE, err=True)
        return EXIT_TERMINATED
    if debug:
        traceback.print_exc()
    typer.echo(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)", err=True)
    return EXIT_INTERNAL


def _print_profile(timings: Timings, write_s: float) -> None:
    rows = timings.rows()
    rows.append({"label": "writing the report", "kind": "stage", "wall": f"{write_s:.1f}", "cpu": "—", "model": "0.0",
                 "other": "100 %", "passes": "0", "images": "0"})
    typer.echo(format_rows(rows), err=True)
    if timings.counted != "hooks":
        typer.echo(f"passes counted: {timings.counted}", err=True)


def _maps_of(results_path: Path) -> dict | None:
    """The maps.npz beside a results.json, or None (older reports, or report.save_maps = false)."""
    from .maps.store import load_maps, maps_beside

    f = maps_beside(results_path)
    return load_maps(f) if f is not None else None


def _run_and_write(config: Path, out: Path | None, overrides: list[str], quiet: bool,
                   baseline: Path | None = None, unpaired: bool = False, profile: bool = False) -> int:
    from .api import run as run_api
    from .config import load_config

    t0 = time.perf_counter()
    cfg = load_config(config, overrides)
    out_dir = out if out is not None else Path("reports") / cfg.name
    audit = run_api(cfg, baseline=baseline, unpaired=unpaired, out=out_dir)
    result = audit.result
    if not quiet:
        blocking = [f for f in result.findings if f.blocking]
        for note in result.scored.cache_log.notes:
            typer.echo(f"cache: {note.text()}")
        if result.scored.from_cache:
            typer.echo("predictions: reused from the cache (same weights, images and preprocessing)")
        elif result.scored.resumed_at:
            typer.echo(f"predictions: resumed an interrupted scoring run at sample {result.scored.resumed_at}")
        typer.echo(f"verdict: {result.verdict.upper()}  {result.task.headline(result.metrics)}  "
                   f"({len(result.findings)} rule results, {len(blocking)} blocking) in {time.perf_counter() - t0:.1f} s")
        for f in blocking:
            typer.echo(f"  {f.status.upper()} {f.rule}: {f.message}")
        typer.echo(f"report: {out_dir.resolve()} ({', '.join(p.name for p in audit.written.values())})")
    if profile and result.timings is not None:
        _print_profile(result.timings, time.perf_counter() - result.timings.ended)
    return EXIT_PASS if result.verdict == "pass" else EXIT_FAIL


@app.command()
@sigterm_raises()
def run(
    config: Annotated[Path, typer.Argument(help="Audit config (TOML).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Report folder (default reports/<name>).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config value: section.key=value.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the seed.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
    rules: Annotated[str | None, typer.Option(help="Rule pack name or path.")] = None,
    baseline: Annotated[Path | None, typer.Option(help="results.json (or its folder) of the released model.")] = None,
    unpaired: Annotated[bool, typer.Option(help="Allow a baseline audited on another held-out set.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    profile: ProfileOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run one audit and write the report; the exit code is the verdict."""
    overrides = list(set_ or [])
    if seed is not None:
        overrides.append(f"seed={seed}")
    if device is not None:
        overrides.append(f'device="{device}"')
    if rules is not None:
        overrides.append(f'rules.pack="{rules}"')
    try:
        code = _run_and_write(config, out, overrides, quiet, baseline, unpaired, profile)
    except (Exception, KeyboardInterrupt, Terminated) as e:  # noqa: BLE001 - mapped to exit codes
        code = _fail(e, debug)
    raise typer.Exit(code)


@app.command()
@sigterm_raises()
def demo(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Report folder (default reports/demo…).")] = None,
    clean: Annotated[bool, typer.Option("--clean", help="The twin trained without the planted shortcut.")] = False,
    task: Annotated[str, typer.Option(help="multiclass (digits with a corner marker), multilabel (radiograph-like "
                                           "findings with a site letter), segmentation (shapes on striped or plain "
                                           "ground) or anomaly (scratched parts with a fixture mark).")] = "multiclass",
    epochs: Annotated[int | None, typer.Option(min=1, max=100, help="Training epochs (default 8 / 10).")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    train: Annotated[bool, typer.Option("--train", help="segmentation: train a small network (about a minute) "
                                                        "instead of the hand-built ones.")] = False,
    baseline: Annotated[Path | None, typer.Option(
        help="Compare with an earlier demo report as the released model (e.g. reports/demo-clean); adds the "
             "demo-gate rules.")] = None,
    profile: ProfileOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Offline demo: build data with a planted shortcut, train a small CNN, audit it.

    `audit demo --clean` trains the twin without the shortcut (same held-out set); then
    `audit demo --baseline reports/demo-clean` gates the confounded model against it. `--task multilabel`: synthetic
    16-bit radiographs with three findings, where a site's laterality letter rides along with effusion.
    `--task segmentation` / `--task anomaly`: hand-built networks with known answers (no training): one that uses
    the planted context or fixture cue, and with --clean one that reads the object or the defect; `--task
    segmentation --train` trains both instead (about a minute each)."""
    from .demo import prepare

    try:
        t0 = time.perf_counter()
        prepare.check_request(task, train)
        out = out if out is not None else prepare.out_folder(task, clean)
        workdir = out.with_name(out.name + "-inputs")
        typer.echo(f"demo: {prepare.doing(task, clean, train)} in {workdir}")
        if baseline is not None:
            from .compare.reports import load_results

            load_results(baseline)  # a missing or bad baseline fails before training, not after
        cfg = prepare.prepare(task, workdir, clean=clean, seed=seed, epochs=epochs, train=train,
                              gate=baseline is not None)
        typer.echo(f"demo: ready in {time.perf_counter() - t0:.1f} s; auditing with {cfg}"
                   + (f" against baseline {baseline}" if baseline is not None else ""))
        code = _run_and_write(cfg, out, [], quiet=False, baseline=baseline, profile=profile)
    except (Exception, KeyboardInterrupt, Terminated) as e:  # noqa: BLE001
        code = _fail(e, debug)
    raise typer.Exit(code)


@app.command()
def compare(
    baseline: Annotated[Path, typer.Argument(help="Baseline results.json, report folder, or MLflow run mlflow:<run id>.")],
    candidate: Annotated[Path, typer.Argument(help="Candidate results.json or report folder.")],
    unpaired: Annotated[bool, typer.Option(help="Allow different held-out sets (no paired intervals, no flips).")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the comparison as JSON.")] = None,
    mlflow_uri: Annotated[str | None, typer.Option("--mlflow-uri", help="Tracking URI of an mlflow:<run id> baseline "
                                                   "(default: MLFLOW_TRACKING_URI).")] = None,
    debug: DebugOpt = False,
) -> None:
    """Compare two audits: metric deltas with paired bootstrap intervals, per-class changes, rule changes,
    prediction flips. Exit 1 when a rule newly fails or a sample flipped from right to wrong."""
    import json

    from .compare.explanations import compare_explanations
    from .compare.reports import compare_results, load_results
    from .report.record import jsonable

    try:
        from .report.mlflow_log import fetch_baseline, is_run_ref

        baseline = fetch_baseline(str(baseline), mlflow_uri) if is_run_ref(str(baseline)) else baseline
        b_doc, c_doc = load_results(baseline), load_results(candidate)
        comp = compare_results(b_doc, c_doc, unpaired=unpaired)
        b_maps, c_maps = _maps_of(baseline), _maps_of(candidate)
        if comp["paired"] and b_maps and c_maps:
            comp["explanations"] = compare_explanations(b_maps, c_maps, c_doc["classes"])
    except Exception as e:  # noqa: BLE001
        raise typer.Exit(_fail(e, debug)) from None
    for name, d in comp["metrics"].items():
        ci = d.get("delta_ci95")
        ci_txt = f"  [95 % CI {ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else ""
        typer.echo(f"{name:18s} {d['baseline']:.4f} -> {d['candidate']:.4f}  ({d['delta']:+.4f}){ci_txt}")
    for r in comp["per_class"]:
        if r["recall_delta"] < 0:
            typer.echo(f"recall '{r['class']}': {r['recall_baseline']:.3f} -> {r['recall_candidate']:.3f}")
    flips = comp.get("flips")
    if flips:
        typer.echo(f"flips: {flips['to_wrong']} right -> wrong, {flips['to_right']} wrong -> right")
    for name, e in (comp.get("explanations") or {}).items():
        if e["status"] == "ok":
            typer.echo(f"maps {name}: {e['n_compared']} shared picks, median Spearman {e['spearman']['median']:.2f}"
                       + (f", median SSIM {e['ssim']['median']:.2f}" if e["ssim"]["median"] is not None else ""))
        for r in e.get("roi_share_per_class", []):
            if abs(r["delta"]) >= 0.05:
                typer.echo(f"  ROI share '{r['class']}': {r['baseline']:.2f} -> {r['candidate']:.2f} (n={r['n']})")
    new = comp["rules"]["newly_failing"]
    typer.echo("newly failing rules: " + (", ".join(new) if new else "none"))
    if json_out is not None:
        json_out.write_text(json.dumps(jsonable(comp), indent=2) + "\n", encoding="utf-8")
    regressed = bool(new) or bool(flips and flips["to_wrong"])
    raise typer.Exit(EXIT_FAIL if regressed else EXIT_PASS)


@app.command("list")
def list_(
    model: Annotated[Path | None, typer.Option("--model", help="An audit config: list its model's layers.")] = None,
    debug: DebugOpt = False,
) -> None:
    """List the task types, explainers, rule kinds, engines, output formats and bundled rule packs; with --model,
    the layers of the configured model that an explainer can target."""
    if model is not None:
        from .api import model_layers
        from .explainers.layers import HOOKLESS

        try:
            table = model_layers(model)
        except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - mapped to exit codes
            raise typer.Exit(_fail(e, debug)) from None
        typer.echo(f"{'layer':48s} {'type':24s} {'output (C×h×w or tokens×D)':28s} layout")
        for row in table.itertuples(index=False):
            mark = "  <- default target layer" if row.default else ""
            typer.echo(f"{row.layer:48s} {row.type:24s} {row.output:28s} {row.layout}{mark}")
        if not table["default"].any():
            typer.echo(f"no default target layer: {HOOKLESS}; the explainers that need hooks are unavailable")
        return
    from .engine import registry as engreg
    from .explainers import registry as ereg
    from .report.writers import registry as oreg
    from .resources import rules_dir
    from .rules import registry as rreg
    from .tasks import registry as treg

    typer.echo("explainers:")
    for name, cls in sorted(ereg().items()):
        typer.echo(f"  {name:22s} {cls.title}")
    typer.echo("tasks:")
    for name, tcls in sorted(treg().items()):
        typer.echo(f"  {name:22s} {tcls.title}")
    typer.echo("rule kinds:")
    for kind, cls in sorted(rreg().items()):
        typer.echo(f"  {kind:22s} {cls.title}")
    typer.echo("engines:")
    for name, engcls in sorted(engreg().items()):
        typer.echo(f"  {name:22s} {engcls.title}")
    typer.echo("output formats (report.formats):")
    for name, fcls in oreg().items():
        if fcls.selectable:
            typer.echo(f"  {name:22s} {fcls.title}")
    typer.echo("rule packs:")
    for p in sorted(rules_dir().glob("*.toml")):
        typer.echo(f"  {p.stem}")


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="Audit config (TOML).")],
    debug: DebugOpt = False,
) -> None:
    """Check a config, its rule pack and its data listing without running the model."""
    from .config import load_config
    from .inputs import prepare_inputs
    from .report.writers import check_formats

    try:
        cfg = load_config(config)
        check_formats(cfg.report.formats)
        inputs = prepare_inputs(cfg)
        typer.echo(f"ok: {len(inputs.heldout.records)} samples, {len(inputs.classes)} classes, "
                   f"{len(inputs.pack.rules)} rules in pack {inputs.pack.name!r}")
        code = EXIT_PASS
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001
        code = _fail(e, debug)
    raise typer.Exit(code)


@app.command()
def verify(
    folder: Annotated[Path, typer.Argument(help="A report folder holding manifest.json.")],
    debug: DebugOpt = False,
) -> None:
    """Prove a report folder is what the audit wrote: exactly the files manifest.json lists, each with its SHA-256,
    and the document id recomputed from results.json; exit 1 naming every file that does not verify."""
    from .verify import verify_report

    try:
        problems = verify_report(folder)
    except Exception as e:  # noqa: BLE001
        raise typer.Exit(_fail(e, debug)) from None
    if problems:
        for p in problems:
            typer.echo(f"NOT VERIFIED {p}", err=True)
        raise typer.Exit(EXIT_FAIL)
    typer.echo(f"ok: {folder} holds exactly the files {folder / 'manifest.json'} lists, each with its SHA-256, and "
               "its document id is results.json's")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()  # click reports usage errors with exit code 2, which matches EXIT_INPUT


if __name__ == "__main__":
    main()

"""The shortcut zoo, held out: limits read on one split, detection and false-alarm rates reported on another.

    .venv/bin/python bench/zoo_split.py                  # 16 kinds x 2 families x 3 architectures x 2 seeds x 2
    .venv/bin/python bench/zoo_split.py --train-only     # train (and measure reliance of) every model, no rules
    .venv/bin/python bench/zoo_split.py --table-only     # the tables from cached audits only
    .venv/bin/python bench/zoo_split.py --snapshot HEAD  # the rules as committed at a revision (git archive)

Each case is a confounded model (its cue on 90 % of one class's training images, zoo_data.py) and its clean
twin (the cue on half the images, independent of the class), for 16 confounder kinds (zoo_cues.py), two data
families (generated shapes; skimage's photographs, zoo_bases.py) and three architectures (a small CNN, a
ResNet-style net, a tiny ViT; zoo_models.py). Both are audited on the same held-out set, confounded as in
deployment; a swapped copy (the cue moved to the other classes) tells which confounded models rely on their
cue (15 points). The protocol (zoo_protocol.py): leave one kind out and leave one family out, limits read on the
tuning split's clean twins (zoo_limits.py), rates on the test split with Wilson 95 % intervals. Models, held-out
files and per-model audits are cached under ``$MODEL_AUDIT_ZOO_BENCH_CACHE`` (default /tmp/model-audit-zoo-bench),
keyed by the data generator, training settings, pack and rule code: after a rule change only the audits rerun.
Writes bench/results/zoo_split.json and .md (the Markdown also goes to stdout).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from zoo_data import FAMILIES, KINDS
from zoo_limits import LimitPolicy
from zoo_models import ARCHS, CACHE

DEFAULT_OUT = BENCH_DIR / "results" / "zoo_split.json"


def snapshot(rev: str) -> Path:
    """The package and packs at git revision ``rev``, exported once under the cache (no git state is touched)."""
    root = BENCH_DIR.parent
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", rev], capture_output=True, text=True,
                            check=True).stdout.strip()
    dest = CACHE / "snapshots" / commit[:12]
    if not (dest / "ZOO_SNAPSHOT").is_file():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(root), "archive", commit, "audit", "rules"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        (dest / "ZOO_SNAPSHOT").write_text(commit + "\n")
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--pack", type=Path, help="default: rules/shortcuts.toml beside the audited package")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--train-only", action="store_true", help="train the models and measure reliance; no rules")
    ap.add_argument("--table-only", action="store_true", help="cached audits only; missing cases are skipped")
    ap.add_argument("--recompute", action="store_true", help="run the rules again even where cached")
    ap.add_argument("--snapshot", metavar="REV", help="run the rules of git revision REV (exported, in a child)")
    ap.add_argument("--q-error", type=float, default=LimitPolicy.q_error)
    ap.add_argument("--q-warning", type=float, default=LimitPolicy.q_warning)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    if args.snapshot:
        dest = snapshot(args.snapshot)
        rest = [a for i, a in enumerate(given) if a != "--snapshot" and (i == 0 or given[i - 1] != "--snapshot")
                and not a.startswith("--snapshot=")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(dest), os.environ.get("PYTHONPATH", "")]),
               "ZOO_SNAPSHOT_REV": args.snapshot}
        return subprocess.run([sys.executable, __file__, *rest], env=env, check=False).returncode
    # the package is imported only now, once the snapshot (if any) decided which one
    import zoo_run

    rev = os.environ.get("ZOO_SNAPSHOT_REV")  # set by the parent of a --snapshot run: the command names it
    return zoo_run.run(args, "python bench/zoo_split.py" + "".join(" " + x for x in given)
                       + (f" --snapshot {rev}" if rev else ""))


if __name__ == "__main__":
    sys.exit(main())

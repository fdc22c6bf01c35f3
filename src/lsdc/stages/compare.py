"""`lsdc compare`: the classifier designs side by side from their `dvc exp` metrics files
(work: `lsdc.compare`). Writes metrics/designs.json and docs/figures/designs.png; then
`lsdc report` puts the design table into README.md."""

from __future__ import annotations

import argparse
from pathlib import Path

from lsdc import compare
from lsdc.errors import UserError
from lsdc.params import Params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiments", nargs="*", help="DVC experiment names, one per design (`dvc exp list`)")
    parser.add_argument("--workspace", action="store_true", help="also a row for the working tree's metrics/")
    parser.add_argument("--out", type=Path, default=compare.DESIGNS_FILE, help="designs JSON")
    parser.add_argument("--figure", type=Path, default=compare.FIGURE, help="comparison figure (PNG)")
    parser.add_argument("--no-tracking", action="store_true", help="leave training times out (no MLflow)")


def main(params: Params, args: argparse.Namespace) -> int:
    from lsdc import tracking

    if not args.experiments and not args.workspace:
        raise UserError("lsdc compare: name the DVC experiments to compare (`dvc exp list`), or give --workspace")
    uri = None if args.no_tracking else tracking.resolve_uri(params.tracking.uri)
    rows = compare.run(args.experiments, Path("."), uri, params.tracking.experiment, args.workspace,
                       args.out, args.figure)
    print(compare.table(rows))
    return 0

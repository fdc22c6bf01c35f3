"""`lsdc evaluate`: competition metric and plots on out-of-fold predictions (work: `lsdc.evaluate`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lsdc import paths
from lsdc.evaluate import Paths, run
from lsdc.params import Params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--oof", type=Path, default=paths.OOF_FILE, help="OOF predictions parquet")


def main(params: Params, args: argparse.Namespace) -> int:
    result = run(params, Paths(oof=args.oof))
    print(json.dumps({"score": result["score"]["total"], "prior": result["prior"]["total"]}))
    return 0

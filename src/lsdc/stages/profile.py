"""`lsdc profile NAME`: switch params.yaml to a named profile (work: `lsdc.profile`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lsdc.params import Params
from lsdc.profile import apply, load_profile


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile", help="profile name under profiles/ (e.g. real-gpu) or a yaml path")
    parser.add_argument("--data-root", help="also set data.root (e.g. the unzipped Kaggle download)")


def main(params: Params, args: argparse.Namespace) -> int:
    overrides = load_profile(args.profile)
    if args.data_root:
        overrides["data.root"] = args.data_root
    changed = apply(overrides, Path(args.params))
    print(f"{args.params}: applied profile {args.profile!r}; changed {len(changed)} key(s)")
    for key in changed:
        print(f"  {key} = {overrides[key]!r}")
    return 0

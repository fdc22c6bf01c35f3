"""Entry modules: one per `lsdc` command, named after it (`train-detector` -> `train_detector.py`).

Each defines `add_arguments(parser)` (its options, with argparse defaults from `lsdc.paths`)
and `main(params, args) -> int`: read inputs, call library code, write outputs, log the
MLflow run. The work itself lives in the library packages, so a stage's import closure
(its DVC code deps, see `lsdc.depgraph`) is exactly the code it runs.
"""

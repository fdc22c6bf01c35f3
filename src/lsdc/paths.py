"""Where the pipeline reads and writes: the one home of every repo-relative path.

Every stage runs with the repository root as its working directory (DVC's convention),
so these paths are relative to it; each command takes options that override them
(their argparse defaults come from here). The data root itself is a param (`data.root`).
"""

from __future__ import annotations

from pathlib import Path

# data
SYNTH_DIR = Path("data/synthetic")               # the built-in dataset (synth)
INDEX_DIR = Path("data/interim/index")           # ingest's tables (lsdc.index)
FOLDS_FILE = Path("data/interim/folds.parquet")  # study -> fold, shared by detectors and classifier
YOLO_DIR = Path("data/interim/yolo")             # one exported detector dataset per plane
ROIS_DIR = Path("data/processed/rois")           # crops.npy + index.parquet
LABELS_FILE = INDEX_DIR / "labels.parquet"      # the graded labels, long form
OOF_FILE = Path("data/processed/oof.parquet")    # out-of-fold probabilities (lsdc.classify.oof)
SUBMISSION_FILE = Path("data/processed/submission.csv")
SUBMISSION_NOTES_FILE = Path("data/processed/submission_notes.csv")

# models: the folder predict-study and Kaggle inference take, with one subfolder per kind
MODELS_DIR = Path("models")
DETECTORS_DIR = MODELS_DIR / "detectors"         # <plane>.pt
CLASSIFIER_DIR = MODELS_DIR / "classifier"       # fold_<k>.pt

# metrics (DVC metrics files hold headlines; <stem>.details.json beside them)
METRICS_DIR = Path("metrics")
SYNTH_METRICS = METRICS_DIR / "synth.json"
INGEST_METRICS = METRICS_DIR / "ingest.json"
EDA_METRICS = METRICS_DIR / "eda.json"
DETECTOR_METRICS_DIR = METRICS_DIR / "detectors"  # <plane>.json, <plane>_results.csv
ROIS_METRICS = METRICS_DIR / "rois.json"
NAMING_METRICS = METRICS_DIR / "naming.json"     # level naming and sides on the stress set (evaluate_naming)
CLASSIFIER_METRICS = METRICS_DIR / "classifier.json"
CLASSIFIER_CURVES_DIR = METRICS_DIR / "classifier"  # fold_<k>.csv
CV_METRICS = METRICS_DIR / "cv.json"
TEST_METRICS = METRICS_DIR / "test.json"
BENCH_METRICS = METRICS_DIR / "bench.json"
RUNTIME_FILE = METRICS_DIR / "runtime.json"      # stage times from MLflow (not a DVC out)

# reports a person opens
REPORTS_DIR = Path("reports")
EDA_DIR = REPORTS_DIR / "eda"
ROI_SHEETS_DIR = REPORTS_DIR / "rois"
PLOTS_DIR = REPORTS_DIR / "plots"
PREDICT_STUDY_DIR = REPORTS_DIR / "predict-study"

# scratch (untracked)
ULTRALYTICS_DIR = Path(".cache/ultralytics")     # ultralytics settings and run folders
BENCH_DIR = Path("scratch/bench")
NAMING_SCRATCH = Path(".cache/naming")           # evaluate_naming's generated stress set (rebuilt every run)
PROFILES_DIR = Path("profiles")
README = Path("README.md")

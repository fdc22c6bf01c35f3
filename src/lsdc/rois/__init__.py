"""ROI extraction: crops around every level and side of every study (train and test).

Modules: `slots` (the fixed rows of a study), `geometry` (slices <-> patient mm,
mapping sagittal level positions onto axial series), `select` (which slice shows a
structure: by anatomy or as the seed notebook, the public Kaggle notebook this repository
ports, did: lsdc/__init__.py), `impute` (filling levels/sides
the detectors missed), `crop` (fixed physical size), `detectors` (the trained YOLO
models or any stand-in), `study` (one study end to end), `store` (streamed writing of
crops.npy + index.parquet), `report` (metrics/rois.json), `sheet` (contact sheets),
`extract` (the whole stage: `lsdc extract-rois`, entry lsdc.stages.extract_rois). Output format: docs/data_formats.md.
"""

CROPS_FILE = "crops.npy"
INDEX_FILE = "index.parquet"
SOURCES = ("detected", "imputed", "missing")
DETECTED, IMPUTED, MISSING = SOURCES

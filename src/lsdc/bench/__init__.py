"""`lsdc bench`: the pipeline's speed and memory, side by side with the way of the seed
notebook (the public Kaggle notebook this repository ports; lsdc/__init__.py)
and with the raw limits (model forward passes, plain pydicom), on the built-in
synthetic data. Not tests: figures are medians over repeats, each comparison measured
in the same run with its contenders interleaved.

timing.py     interleaved repeats, medians, process-tree peak memory
workspace.py  the benchmarks' own dataset, index, detectors, ROI store, classifier (cached)
decode.py     1. DICOM decode: lsdc.dicom.read_series vs a plain dcmread().pixel_array loop
notebook.py   the seed notebook's ROI loop, re-created as the baseline for 2.
rois.py       2. ROI extraction studies/s vs the notebook loop
study.py      3. one study end to end (predict-study) with its breakdown vs forward passes
training.py   4. classifier training throughput and data-loader wait
scaling.py    5. ROI extraction time and peak memory at three dataset sizes
report.py     the printed table and metrics/bench.json
stage.py      the `lsdc bench` command
"""

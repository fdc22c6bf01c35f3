"""The `eda` stage: the exploratory analysis of the seed notebook
(the public Kaggle notebook this repository ports; lsdc/__init__.py) as an HTML report.

`lsdc.index` loads the ingest index; `stats` computes counts and findings as pure
functions of it, `plots` and `examples` draw the PNGs, `report` writes the HTML
and `stage` is the `lsdc eda` entry point.
"""

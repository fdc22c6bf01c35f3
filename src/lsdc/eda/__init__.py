"""The `eda` stage: the seed notebook's exploratory analysis as an HTML report.

`tables` loads the ingest index, `stats` computes counts and findings as pure
functions of it, `plots` and `examples` draw the PNGs, `report` writes the HTML
and `stage` is the `lsdc eda` entry point.
"""

"""Detectors: YOLO dataset export, training, inference and the anatomy step.

One code path for the three planes. The detector finds structures (discs, foramina,
subarticular zones); `anatomy` decides which level or side each box is.
"""

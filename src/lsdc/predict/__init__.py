"""Prediction: the Kaggle submission for the test studies and one-study reports.

ensemble.py    fold checkpoints -> mean probabilities over a study's crops; the training
               prior for labels without evidence (shared by both commands)
submission.py  the sample_submission.csv frame: build, validate, write
stage.py       `lsdc predict` (DVC stage): submission.csv, submission_notes.csv, metrics/test.json
study.py       `lsdc predict-study PATH`: one study folder -> table, JSON, overlay PNG
overlay.py     the overlay PNG of predict-study
"""

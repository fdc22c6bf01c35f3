"""Cross-validated timm classifier over the ROI store.

layout.py   which store rows become which input channels ('anatomical' | 'notebook')
data.py     labels and folds tables -> arrays, per-study crop stacks, the torch Dataset
augment.py  albumentations pipeline (one geometric transform for all channels) + normalisation
model.py    timm factory, loss, the checkpoint dict, `predict_probs`
engine.py   one fold: epochs, validation metrics, early stopping
train.py    the `train_classifier` stage (all folds, MLflow parent + nested runs, OOF table)
"""

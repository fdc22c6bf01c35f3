"""Cross-validated timm classifier over the ROI store.

layout.py   which store rows become which input channels ('crops' | 'anatomical' | 'notebook'), the mirror
data.py     labels and folds tables -> arrays, per-study crop stacks, the torch Dataset (+ left-right swap)
crops.py    the per-crop model (default): one shared backbone per crop stack, level/side embeddings, family heads
augment.py  albumentations pipeline (one geometric transform for all channels) + normalisation
model.py    timm factory (any layout), the metric-balanced loss, the checkpoint dict, `predict_probs`
engine.py   one fold: epochs, validation metrics, early stopping
train.py    the `train_classifier` stage (all folds, MLflow parent + nested runs, OOF table)
"""

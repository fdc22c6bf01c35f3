"""Synthetic RSNA-layout dataset: anatomy, rendering, DICOM + CSV writing, and the label model."""

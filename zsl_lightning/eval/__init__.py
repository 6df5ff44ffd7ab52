"""Evaluation: metrics, the final-classifier stage, model selection and result tables."""

"""Evaluation: metrics on the test split, cross-validation, the champion and the blessing.

Scores a trained model, reads and scores the current champion on the same rows, and decides
whether the candidate may be published. Imports modelling (cross-validation refits models)
and data, never the step modules.
"""

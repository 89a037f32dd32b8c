"""Data: from a source location to cleaned, split, described tables.

Listing and reading sources (local, object stores, shipped samples), decoding images, the
schema and drift checks, cleaning rules, the split and the preprocessing specification (the
statistics and vocabularies a model bakes in). No Keras or TensorFlow import, and never an
import of modelling, evaluation or the step modules: data steps start fast.
"""

"""Modelling: what a model is. The hypermodels, the search space's use, Hyperband and the tuner
classes, final training with its callbacks, ensembles and the cost-aware choice.

One search space and one ``build_model(hp)`` serve tuning and training; the tuner's pipeline
behaviour (failed trials, state mirror, progress lines) and the resumable final training live
here. Where that work runs (one process, processes or devices of the step's node, pods of the
cluster) is :mod:`tunepipe.execution`'s, which imports this package and is never imported by it.
A new tuner algorithm goes in ``tune``; a new model family beside ``model`` and ``image_model``.
"""

"""Modelling and tuning: the hypermodels, Hyperband search and final training.

One search space and one ``build_model(hp)`` serve tuning and training; the tuner's pipeline
behaviour (failed trials, state mirror, progress lines), the distributed backends (local
processes, Kubernetes pods) and the resumable final training live here. A new tuner algorithm
goes in ``tune``; a new model family beside ``model`` and ``image_model``.
"""

"""Execution: where the work of a step runs, apart from what the work is (:mod:`tunepipe.modelling`).

Steps ask this package for a runner and hand it the work; they never branch on where it runs:

- :func:`tunepipe.execution.tuning.tuning_runner`: the search in the tune step's process, as a
  Keras Tuner chief and workers on its node (:mod:`.tuner_processes`, :mod:`.tuner_worker`), or
  as pods it creates on the cluster (:mod:`.k8s.tuning`);
- :func:`tunepipe.execution.training.training_runner`: final training on one device, on every
  device of the node (:mod:`.replicas`), or as a Kubeflow Trainer ``TrainJob`` (:mod:`.k8s.training`,
  :mod:`.jax_worker`);
- :func:`tunepipe.execution.folds.fold_runner`: cross-validation folds in the step's process or in
  processes of its node.

Each takes one :class:`~tunepipe.config.Placement` (``where``: auto, step, node, cluster;
``workers``), resolved by the measured rules of :mod:`.placement` from what the step sees of its
machine (:mod:`.host`, :mod:`.devices`). Everything that talks to Kubernetes goes through one
client interface and one job runner (:mod:`.k8s.api`, :mod:`.k8s.runner`).
"""

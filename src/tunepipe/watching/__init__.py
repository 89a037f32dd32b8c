"""Retraining when new data lands: ``tunepipe watch`` (see docs/watch.md).

:mod:`~tunepipe.watching.snapshots` lists the snapshots under a watched location and decides
which are complete; :mod:`~tunepipe.watching.records` keeps the create-only record that makes
each snapshot start exactly one run; :mod:`~tunepipe.watching.guard` refuses a snapshot whose
schema drifted fatally from the champion's; :mod:`~tunepipe.watching.watcher` is the loop. The
launchers that start runs (Kubeflow Pipelines, or a local ``tunepipe run``) live in
:mod:`pipelines.watch`, beside the other commands that talk to a cluster.
"""

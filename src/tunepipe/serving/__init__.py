"""Serving the champion: follow ``<model>/CHAMPION``, decode prediction requests, run the SavedModel.

- :mod:`tunepipe.serving.settings`: the server's options and limits, with their defaults.
- :mod:`tunepipe.serving.contract`: what a version's SavedModel signatures take and give.
- :mod:`tunepipe.serving.requests`: JSON rows (KServe/TF Serving v1 ``instances``) to input arrays,
  and output arrays back to rows; every refusal is a :class:`~tunepipe.errors.BadRequest`.
- :mod:`tunepipe.serving.loader`: find, download (checksum-verified), load, warm and swap versions.
- :mod:`tunepipe.serving.server`: KServe's model server around them (the only module importing kserve).

Nothing else in tunepipe imports this package but the CLI (``tunepipe serve``).
"""

"""Storage: where bytes live and how they get there safely.

Location checks (``uris``), the one seam that decides which locations are remote and which
object store serves them (``stores``), the stores themselves (``objectstore``: the protocol,
retries and GCS; ``s3``: S3 and S3-compatible stores), atomic file writes, folder locks,
content hashes and the tuner-state mirror. Storage imports nothing
above it (no configuration, data, modelling or steps), so every other part may use it.
"""

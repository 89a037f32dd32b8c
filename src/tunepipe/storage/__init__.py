"""Storage: where bytes live and how they get there safely.

Location checks (``uris``), the object stores behind remote roots (``objectstore``), atomic
file writes, folder locks, content hashes and the tuner-state mirror. Storage imports nothing
above it (no configuration, data, modelling or steps), so every other part may use it.
"""

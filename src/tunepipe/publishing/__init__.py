"""Publishing: the SavedModel export and the atomic, versioned publish protocol.

``export`` builds and verifies what is served; ``publish`` puts a staged version in place on a
local folder or an object store (hidden temporary name, checksums, never-reused versions, a
champion pointer that never moves backwards).
"""

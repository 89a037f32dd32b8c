"""The error types tunepipe raises on purpose.

Every expected failure (bad data, bad configuration, an export that cannot be published)
is one of these, with a message that names the file, column or value at fault. The CLI
prints the message alone and exits non-zero; anything else is a bug and keeps its traceback.
"""


class TunepipeError(Exception):
    """Base class of every error tunepipe raises on purpose."""


class ConfigError(TunepipeError):
    """A configuration file or pipeline argument is invalid."""


class DataError(TunepipeError):
    """The input data cannot be used: unreadable, empty, missing a column, and so on."""


class ExportError(TunepipeError):
    """A model could not be published to the export location."""


class TuningError(TunepipeError):
    """The hyperparameter search could not finish, e.g. too many trials failed in a row."""


class TrainingError(TunepipeError):
    """Final training could not finish, e.g. its multi-worker TrainJob failed."""


class ObjectStoreError(TunepipeError):
    """An object-store operation (gs://) failed: refused, or still failing after bounded retries."""


class RetriesExhausted(ObjectStoreError):
    """A request kept failing with transient errors (429, 5xx, dropped connections) until the
    retry policy gave up: an outage, worth trying again later, unlike a refusal (403, 400)."""


class ServingError(TunepipeError):
    """A published version cannot be served: its pointer, card or files are missing or do not verify."""


class BadRequest(TunepipeError):
    """A prediction request cannot be answered as sent; the message names the input and value at fault.

    The model server answers it with HTTP 400 and keeps serving.
    """


class DeployError(TunepipeError):
    """A new champion could not be deployed: the InferenceService is missing, not pinned, or refused."""

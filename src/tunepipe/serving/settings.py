"""The model server's options and limits, each default declared once (the CLI shows these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Requests: 16 MiB holds a batch of thousands of tabular rows or a few large photos; anything
# bigger is refused before it is parsed, so one client cannot make the server hold gigabytes.
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# One encoded image: 8 MiB covers a full-resolution phone photo.
DEFAULT_MAX_IMAGE_BYTES = 8 * 1024 * 1024
# One image's width x height: 16.7 megapixels (4096 x 4096) decodes to 50 MB of RGB; the header
# is read first, so a small file that decodes to a huge image is refused before decoding.
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
# The champion pointer is one small object: reading it every 5 s costs little on a bucket and
# serves a new champion within seconds of its publication.
DEFAULT_POLL_SECONDS = 5.0
DEFAULT_HOST = "127.0.0.1"  # loopback unless asked: a container or pod passes --host 0.0.0.0
DEFAULT_PORT = 8080  # KServe's own default HTTP port


@dataclass(frozen=True)
class Limits:
    """What one request may hold; a request over a limit gets HTTP 400 naming the limit.

    Attributes:
        max_body_bytes: Request body size (default :data:`DEFAULT_MAX_BODY_BYTES`).
        max_image_bytes: One encoded image, after base64 decoding (default :data:`DEFAULT_MAX_IMAGE_BYTES`).
        max_image_pixels: One image's height x width (default :data:`DEFAULT_MAX_IMAGE_PIXELS`).
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``tunepipe serve`` needs.

    Attributes:
        export_root: The pipeline's export root: a local folder, ``gs://`` or ``s3://`` URI.
        model_name: The model folder under it (``<export_root>/<model_name>/CHAMPION``).
        cache_dir: Where versions from an object store are downloaded (local versions are served
            in place).
        version: Serve this version and never move (``None``, default: follow the champion).
        host: Interface to listen on (default :data:`DEFAULT_HOST`).
        port: HTTP port (default :data:`DEFAULT_PORT`).
        poll_seconds: How often the champion pointer is read (default :data:`DEFAULT_POLL_SECONDS`).
        limits: Request limits (default :class:`Limits`).
    """

    export_root: str
    model_name: str
    cache_dir: Path
    version: int | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    poll_seconds: float = DEFAULT_POLL_SECONDS
    limits: Limits = field(default_factory=Limits)

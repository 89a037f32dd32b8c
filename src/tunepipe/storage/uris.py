"""The one check every location tunepipe reads or writes goes through.

Allowed: plain local paths, ``file://`` URIs (mapped to the local path they name), the
object stores ``gs://bucket/object`` (Google Cloud Storage) and ``s3://bucket/object`` (Amazon
S3 and S3-compatible stores such as MinIO), and ``sample://<name>`` (datasets shipped in the
package). Refused, with the value named: any other scheme (``http://``, ``https://``,
``ftp://`` ...), since a typo must never read or write somewhere unexpected and tunepipe
downloads nothing from the web; a ``..`` path segment, locally or in an object name, which
could climb out of the folder a configuration meant; a ``file://`` URI naming another host; a
bucket name that breaks its store's naming rules. When allowed roots are configured, a local
path (or ``file://`` URI) must lie inside one of them once symlinks are resolved.

This module only says whether a location is acceptable; which object store serves an accepted
``gs://`` or ``s3://`` URI, and how it is split into bucket and key, is decided in one place:
:mod:`tunepipe.storage.stores`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from tunepipe.datasets import SAMPLE_SCHEME
from tunepipe.errors import DataError, TunepipeError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_BUCKET_CHARACTERS = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
_S3_BUCKET_CHARACTERS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
USAGE = "use a local path, file:///path, gs://bucket/prefix, s3://bucket/prefix or sample://<name>"
LOCAL_USAGE = "use a local path or file:///path"


def scheme_of(uri: str) -> str | None:
    """The scheme of ``uri`` in lower case (``gs``, ``http``), or ``None`` for a plain path."""
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match else None


def bucket_problem(name: str) -> str | None:
    """Why ``name`` is not a valid Cloud Storage bucket name, or ``None`` if it is.

    Rules (cloud.google.com/storage/docs/buckets#naming): 3-63 characters (up to 222 with
    dots, each dot-separated part at most 63); lowercase letters, digits, ``-``, ``_`` and
    ``.``; starts and ends with a letter or digit; no ``goog`` prefix, no ``google`` inside;
    not an IP address.
    """
    longest = 222 if "." in name else 63
    if not 3 <= len(name) <= longest:
        return f"must be 3-{longest} characters long"
    if not _BUCKET_CHARACTERS.match(name):
        return "must hold only lowercase letters, digits, '-', '_' and '.', and start and end with a letter or digit"
    if any(len(part) > 63 or not part for part in name.split(".")):
        return "each dot-separated part must be 1-63 characters long"
    if name.startswith("goog") or "google" in name:
        return "must not start with 'goog' or contain 'google'"
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return None
    return "must not be an IP address"


def s3_bucket_problem(name: str) -> str | None:
    """Why ``name`` is not a valid S3 bucket name, or ``None`` if it is.

    Rules (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html, general
    purpose buckets): 3-63 characters; lowercase letters, digits, ``.`` and ``-`` (no ``_``);
    starts and ends with a letter or digit; no two adjacent dots; not an IP address. MinIO
    applies the same rules.
    """
    if not 3 <= len(name) <= 63:
        return "must be 3-63 characters long"
    if not _S3_BUCKET_CHARACTERS.match(name):
        return "must hold only lowercase letters, digits, '-' and '.', and start and end with a letter or digit"
    if ".." in name:
        return "must not hold two adjacent dots"
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return None
    return "must not be an IP address"


# The object-store schemes a location may name, with their bucket rules. Which store serves
# each one is tunepipe.storage.stores' table; this one only says what is well formed.
BUCKET_RULES = {"gs": bucket_problem, "s3": s3_bucket_problem}


def _climbs(path: str) -> bool:
    return ".." in PurePosixPath(path.replace("\\", "/")).parts


def _check_bucket_uri(uri: str, scheme: str, what: str, error: type[Exception]) -> str:
    """A ``gs://`` or ``s3://`` URI with its scheme in lower case, once bucket and names are checked."""
    rest = uri[len(scheme) + 3:]
    bucket, _, name = rest.partition("/")
    problem = BUCKET_RULES[scheme](bucket)
    if problem:
        raise error(f"{what}{uri}: {bucket!r} is not a valid bucket name ({problem})")
    if ".." in name.split("/"):
        raise error(f"{what}{uri}: '..' segments are not allowed in object names")
    return f"{scheme}://{rest}"


def _file_path(uri: str, what: str, error: type[Exception]) -> str:
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise error(f"{what}{uri}: file:// URIs must name a local file (file:///path), not host {parts.netloc!r}")
    if parts.query or parts.fragment:
        raise error(f"{what}{uri}: file:// URIs take no query or fragment")
    return unquote(parts.path)


def _inside(path: str, roots: Sequence[str]) -> bool:
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots)


def check_location(
    uri: str, what: str = "", error: type[Exception] = DataError, allowed_roots: Sequence[str] = (),
    samples: bool = True, stores: bool = True,
) -> str:
    """Checks a location against the allow-list; returns it with ``file://`` mapped to a path.

    Args:
        uri: A local path, ``file://``, ``gs://``, ``s3://`` or ``sample://`` URI. Existence is
            not checked.
        what: Prefix of error messages naming the setting, e.g. ``"data.uri: "``.
        error: The error type raised (``DataError`` for data, ``ConfigError`` for settings).
        allowed_roots: Local folders that local paths must lie in (symlinks resolved); empty
            (default) allows any local path.
        samples: Whether ``sample://`` is allowed (only data sources are shipped samples).
        stores: Whether object-store URIs (``gs://``, ``s3://``) are allowed (default: yes, for
            data, schemas, tuner and export roots); a configuration file is always local.

    Returns:
        The local path (``file://`` URIs decoded to it), or the ``gs://``/``s3://``/``sample://``
        URI with its scheme in lower case.

    Raises:
        TunepipeError: Of type ``error``, naming ``uri`` and the rule it breaks.
    """
    scheme = scheme_of(uri)
    if scheme in BUCKET_RULES and stores:
        return _check_bucket_uri(uri, scheme, what, error)
    if scheme == "sample" and samples:
        return SAMPLE_SCHEME + uri[len(SAMPLE_SCHEME):]
    if scheme == "file":
        path = _file_path(uri, what, error)
    elif scheme is not None or "://" in uri:
        named = f"{scheme}://" if scheme else "(malformed)"
        raise error(f"{what}{uri}: unsupported scheme {named} ({USAGE if stores else LOCAL_USAGE})")
    else:
        path = uri
    if _climbs(path):
        raise error(f"{what}{uri}: '..' path segments are not allowed")
    if allowed_roots and not _inside(path, allowed_roots):
        raise error(f"{what}{uri}: outside the allowed local roots {list(allowed_roots)} (data.allowed_roots)")
    return path


def check_roots(roots: Sequence[str]) -> list[str]:
    """Allowed roots must be local folders (plain paths or ``file://``) without ``..`` segments.

    Raises:
        ValueError: A root with another scheme or a ``..`` segment (for pydantic validators).
    """
    checked = []
    for root in roots:
        if scheme_of(root) not in (None, "file"):
            raise ValueError(f"allowed roots are local folders, got {root!r}")
        try:
            checked.append(check_location(root, samples=False))
        except TunepipeError as refused:
            raise ValueError(str(refused)) from None
    return checked

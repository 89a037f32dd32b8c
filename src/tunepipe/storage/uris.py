"""The one check every location tunepipe reads or writes goes through.

Allowed: plain local paths, ``file://`` URIs (mapped to the local path they name), the
object stores ``gs://bucket/object`` (Google Cloud Storage) and ``s3://bucket/object`` (Amazon
S3 and S3-compatible stores such as MinIO), and ``sample://<name>`` (datasets shipped in the
package). Refused, with the value named: any other scheme (``http://``, ``https://``,
``ftp://`` ...), since a typo must never read or write somewhere unexpected and tunepipe
downloads nothing from the web; a ``..`` path segment, locally or in an object name, which
could climb out of the folder a configuration meant; a ``file://`` URI naming another host; a
bucket name that breaks its store's naming rules (its row's ``bucket_problem``). When allowed
roots are configured, a local path (or ``file://`` URI) must lie inside one of them once
symlinks are resolved.

This module only says whether a location is acceptable; which schemes are object stores, and
each one's bucket rules, is the scheme table's (:mod:`tunepipe.storage.locations`); which store
serves an accepted URI, and how it is split into bucket and key, is decided in one place:
:mod:`tunepipe.storage.stores`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from tunepipe.datasets import SAMPLE_SCHEME
from tunepipe.errors import DataError, TunepipeError
from tunepipe.storage.locations import SCHEMES, scheme_of

LOCAL_USAGE = "use a local path or file:///path"


def usage() -> str:
    """What a location may be, for messages: local paths, each object store of the table, samples."""
    stores = "".join(f", {name}://bucket/prefix" for name in SCHEMES)
    return f"use a local path, file:///path{stores} or sample://<name>"


def _climbs(path: str) -> bool:
    return ".." in PurePosixPath(path.replace("\\", "/")).parts


def _check_bucket_uri(uri: str, scheme: str, what: str, error: type[Exception]) -> str:
    """An object-store URI with its scheme in lower case, once bucket (its row's rules) and names are checked."""
    rest = uri[len(scheme) + 3:]
    bucket, _, name = rest.partition("/")
    problem = SCHEMES[scheme].bucket_problem(bucket)
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
    if scheme in SCHEMES and stores:
        return _check_bucket_uri(uri, scheme, what, error)
    if scheme == "sample" and samples:
        return SAMPLE_SCHEME + uri[len(SAMPLE_SCHEME):]
    if scheme == "file":
        path = _file_path(uri, what, error)
    elif scheme is not None or "://" in uri:
        named = f"{scheme}://" if scheme else "(malformed)"
        raise error(f"{what}{uri}: unsupported scheme {named} ({usage() if stores else LOCAL_USAGE})")
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

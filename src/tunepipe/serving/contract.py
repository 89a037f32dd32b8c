"""What a published version's SavedModel takes and gives, as the server needs to know it.

The signatures themselves (input names, dtypes, shapes) are read from the loaded SavedModel, the
ground truth; the model card adds what the graph cannot say: the original column of each tabular
input, so that requests may name either. The contract's names are the export's
(:mod:`tunepipe.publishing.serving`).

Tabular models have one signature, ``serving_default``: one ``[None]`` input per feature
(``float32``, NaN = missing, or ``string``, "" = missing). Image models have ``serving_default``
taking encoded bytes (one ``string`` input named ``<input>_bytes``, e.g. ``image_bytes``),
``pixels`` taking ``uint8`` arrays and ``float_pixels`` taking ``float32`` 0-255 arrays, each
under ``<input>`` (e.g. ``image``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tunepipe.publishing.serving import BYTES_SUFFIX, DEFAULT_SIGNATURE, IGNORED_COLUMNS, PIXELS_SIGNATURE

FLOAT32, STRING, UINT8 = "float32", "string", "uint8"


@dataclass(frozen=True)
class TensorInfo:
    """One signature input: dtype name (``float32``, ``string``, ``uint8``) and shape (``None``: any)."""

    dtype: str
    shape: tuple[int | None, ...]


@dataclass(frozen=True)
class Contract:
    """A version's signatures and the tabular inputs' original columns.

    Attributes:
        signatures: Signature name -> input name -> :class:`TensorInfo`.
        columns: Column name -> input name, for the tabular inputs the card maps (may be empty).
        ignored: Columns a request may send and the model ignores (identifiers left out by ingest).
        dates: Inputs that hold a date (days since the epoch), which a request may send as text.
    """

    signatures: Mapping[str, Mapping[str, TensorInfo]]
    columns: Mapping[str, str]
    ignored: frozenset[str] = frozenset()
    dates: frozenset[str] = frozenset()

    @property
    def inputs(self) -> Mapping[str, TensorInfo]:
        """``serving_default``'s inputs."""
        return self.signatures[DEFAULT_SIGNATURE]

    @property
    def bytes_input(self) -> str | None:
        """An image model's encoded-image input (``<input>_bytes``); ``None`` for a tabular model."""
        if len(self.inputs) != 1:
            return None
        ((name, info),) = self.inputs.items()
        return name if name.endswith(BYTES_SUFFIX) and info.dtype == STRING and len(info.shape) == 1 else None

    @property
    def is_image(self) -> bool:
        return self.bytes_input is not None

    @property
    def pixel_input(self) -> str | None:
        """The pixel signatures' input (``<input>``), from ``pixels`` or else the bytes input's name."""
        pixels = self.signatures.get(PIXELS_SIGNATURE, {})
        if len(pixels) == 1:
            return next(iter(pixels))
        return self.bytes_input.removesuffix(BYTES_SUFFIX) if self.bytes_input else None

    @property
    def channels(self) -> int | None:
        """The pixel signatures' channel count (``None``: not an image model, or any)."""
        pixels = self.signatures.get(PIXELS_SIGNATURE, {}).get(self.pixel_input or "")
        return pixels.shape[-1] if pixels is not None and pixels.shape else None


def contract_of(signatures: Mapping[str, Mapping[str, TensorInfo]], card_signature: Mapping[str, Any]) -> Contract:
    """The contract of a loaded version.

    Args:
        signatures: The SavedModel's signatures, as read from it.
        card_signature: The model card's ``signature`` section (``inputs``: name -> ``{"column", ...}``).

    Raises:
        ValueError: The SavedModel has no ``serving_default`` signature.
    """
    if DEFAULT_SIGNATURE not in signatures:
        raise ValueError(f"the SavedModel has no {DEFAULT_SIGNATURE!r} signature (it has {sorted(signatures)})")
    columns, dates = {}, set()
    for name, entry in (card_signature.get("inputs") or {}).items():
        if isinstance(entry, Mapping) and entry.get("date") and name in signatures[DEFAULT_SIGNATURE]:
            dates.add(name)
        column = entry.get("column") if isinstance(entry, Mapping) else None
        if column and column != name and name in signatures[DEFAULT_SIGNATURE]:
            columns[str(column)] = name
    ignored = frozenset(str(column) for column in card_signature.get(IGNORED_COLUMNS) or [])
    return Contract(signatures, columns, ignored - set(columns) - set(signatures[DEFAULT_SIGNATURE]), frozenset(dates))

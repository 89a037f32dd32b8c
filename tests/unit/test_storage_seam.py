"""One storage seam: only tunepipe.storage.stores decides what is remote and which store serves it,
and each answer comes from the URI's row of the scheme table.

The scan reads every Python file of src/, components/ and pipelines/ and looks at string
literals used as code (docstrings are skipped): a literal that starts with ``gs://`` or
``s3://`` (compared with, stripped, parsed or built into a URI) or that is exactly a scheme
name (``"gs"``, ``"s3"``) may appear only in the store's own module, which holds its row.
Help text and messages that mention ``gs://`` mid-sentence are fine.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tunepipe.errors import DataError, ObjectStoreError
from tunepipe.storage import stores

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
# Each store's module names its own scheme, in its row; no other module does.
ALLOWED = {str(Path(sys.modules[row.store.__module__].__file__ or "").relative_to(ROOT))
           for row in stores.SCHEMES.values()}
SCHEME_PREFIXES = ("gs://", "s3://")
SCHEME_NAMES = {"gs", "s3"}


def _skipped(tree: ast.AST) -> set[int]:
    """Docstrings, and the service name in ``boto3.client("s3")`` (AWS's name, not a URI scheme)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "client":
            found.update(id(argument) for argument in node.args[:1])
    return found


def scheme_literals(source: str) -> list[str]:
    """String literals in ``source`` (outside docstrings) that test for, parse or build a store URI."""
    tree = ast.parse(source)
    skipped = _skipped(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            value = node.value.strip().lower()
            if value.startswith(SCHEME_PREFIXES) or value in SCHEME_NAMES:
                hits.append(node.value)
    return hits


def test_no_module_outside_the_seam_tests_for_a_store_scheme() -> None:
    offenders = {}
    for folder in ("src", "components", "pipelines"):
        for path in (ROOT / folder).rglob("*.py"):
            name = str(path.relative_to(ROOT))
            if name not in ALLOWED and (hits := scheme_literals(path.read_text())):
                offenders[name] = hits
    assert offenders == {}


def test_the_scan_sees_comparisons_and_parsing_but_not_prose() -> None:
    """Guards the guard."""
    assert scheme_literals('x.startswith("gs://")') == ["gs://"]
    assert scheme_literals('GCS = "gs://"\nscheme == "s3"') == ["gs://", "s3"]
    assert scheme_literals('f"gs://{bucket}/{key}"') == ["gs://"]
    assert scheme_literals('def f():\n    """Reads gs:// data."""\nhelp="local or gs://bucket/prefix"') == []
    assert scheme_literals('boto3.client("s3")') == []


@pytest.mark.parametrize(
    ("uri", "scheme", "bucket", "key", "prefix"),
    [
        ("gs://my-bucket/data/part-", "gs", "my-bucket", "data/part-", "data/part-"),
        ("s3://my-bucket/models/m/", "s3", "my-bucket", "models/m/", "models/m"),
        ("S3://my-bucket", "s3", "my-bucket", "", ""),
    ],
)
def test_one_parser_splits_every_store_uri(uri: str, scheme: str, bucket: str, key: str, prefix: str) -> None:
    parsed = stores.parse(uri)
    assert (parsed.scheme, parsed.bucket, parsed.key, parsed.prefix) == (scheme, bucket, key, prefix)
    assert str(parsed) == f"{scheme}://{bucket}/{key}"
    assert stores.is_remote(uri)


def test_local_paths_and_other_schemes_are_not_remote() -> None:
    for uri in ("/srv/models", "models", "file:///srv/models", "sample://penguins", "http://h/x", "gsx://b/x"):
        assert not stores.is_remote(uri)
    with pytest.raises(ObjectStoreError, match=r"/srv/x: not an object-store URI \(gs://, s3://\)"):
        stores.parse("/srv/x")
    with pytest.raises(DataError, match=r"s3://my_bucket/x: 'my_bucket' is not a valid bucket name"):
        stores.parse("s3://my_bucket/x", error=DataError)
    with pytest.raises(ObjectStoreError, match=r"'\.\.' segments are not allowed"):
        stores.parse("gs://my-bucket/a/../b")


def test_store_for_picks_the_store_of_the_scheme() -> None:
    from tunepipe.storage.gcs import GcsObjectStore
    from tunepipe.storage.s3 import S3ObjectStore

    class Client:
        def bucket(self, name: str) -> str:
            return name

    gcs = stores.store_for("gs://my-bucket/x", client=Client())
    s3 = stores.store_for("s3://my-bucket/x", client=object())
    assert isinstance(gcs, GcsObjectStore) and gcs.uri("k") == "gs://my-bucket/k"
    assert isinstance(s3, S3ObjectStore) and s3.uri("k") == "s3://my-bucket/k"
    assert stores.shares_through_tensorflow("gs://my-bucket/t")
    assert not stores.shares_through_tensorflow("s3://my-bucket/t")


def test_the_gcs_fingerprint_is_byte_identical_to_before_the_seam() -> None:
    """The cache key depends on it: these values were computed by the code before the seam (03fd1c9)."""
    from types import SimpleNamespace

    from tunepipe.data.sources import fingerprint

    blobs = [SimpleNamespace(name=name, size=size, generation=generation, md5_hash=md5)
             for name, size, generation, md5 in [
                 ("data/part-0000.csv", 120, 1700000000000001, "XUFAKrxLKna5cZ2REBfFkg=="),
                 ("data/part-0001.csv", 80, 1700000000000002, None),
                 ("data/sub/x.csv", 5, 3, "1B2M2Y8AsgTpgAmY7PhCfg=="),
             ]]
    client = SimpleNamespace(
        list_blobs=lambda bucket, prefix, retry=None: [blob for blob in blobs if blob.name.startswith(prefix)],
        bucket=lambda name: SimpleNamespace(),
    )
    assert fingerprint("gs://my-bucket/data/", client) == (
        "gcs:e9012e6d9231fdb97f2413289a0bb62b4d797650e4a808ffe1905841be444c5a")
    assert fingerprint("gs://my-bucket/data/part-", client) == (
        "gcs:28a90dc5df88f9159ea063c55c509b6b41781b45b9f6c7497237635bf1a0f2cc")
    assert fingerprint("gs://my-bucket/data/part-0001.csv", client) == (
        "gcs:10bfab216cfdcd52ded8ca8ad6e617efd1d49e288c6d43c88630ca85f6f78599")


@pytest.fixture
def memory_row(monkeypatch: pytest.MonkeyPatch):
    """The memory store's row added to the scheme table for one test, on an empty service: the one
    change a new store makes outside its own module (tests/unit/fake_store.py)."""
    import fake_store

    monkeypatch.setitem(stores.SCHEMES, fake_store.SCHEME.name, fake_store.SCHEME)
    monkeypatch.setattr(fake_store, "SERVICE", fake_store.MemoryClient())
    return fake_store


def test_a_new_store_is_one_module_and_one_row(memory_row, tmp_path: Path) -> None:
    """With only its row in the table, mem:// is checked, parsed, read, fingerprinted, published to,
    read back, mirrored and watched through the same generic paths as gs:// and s3://."""
    from tunepipe.data.ingest import read_table
    from tunepipe.data.sources import fingerprint
    from tunepipe.publishing.champion_card import read_champion_card
    from tunepipe.publishing.publish import publish_to_store
    from tunepipe.storage.objectstore import PreconditionFailed
    from tunepipe.storage.tuner_state import StoreSync, state_sync_for
    from tunepipe.storage.uris import check_location
    from tunepipe.watching.records import CLAIMED, Record, StoreRecords, records_for

    assert stores.is_remote("MEM://data/x") and not stores.shares_through_tensorflow("mem://data/x")
    assert check_location("mem://data/x.csv") == "mem://data/x.csv"
    with pytest.raises(DataError, match=r"'Data_1' is not a valid bucket name \(must hold only lowercase"):
        check_location("mem://Data_1/x.csv")
    store = stores.store_for("mem://data/tables/")
    assert isinstance(store, memory_row.MemoryStore) and store.uri("k") == "mem://data/k"

    for index, rows in enumerate(("a,y\n1,x\n2,y\n", "a,y\n3,x\n")):
        (tmp_path / f"part-{index}.csv").write_text(rows)
        store.upload_file(f"tables/part-{index}.csv", tmp_path / f"part-{index}.csv")
    assert len(read_table("mem://data/tables/")) == 3
    first = fingerprint("mem://data/tables/")
    assert first.startswith("mem:") and fingerprint("mem://data/tables/") == first
    store.upload_file("tables/part-1.csv", tmp_path / "part-0.csv")  # a new version under the same name
    assert fingerprint("mem://data/tables/") != first

    staged = tmp_path / "staged"
    (staged / "assets.extra").mkdir(parents=True)
    (staged / "saved_model.pb").write_text("graph")
    render = _card_renderer()
    assert publish_to_store(stores.store_for("mem://models/m"), "m/penguins", staged, render) == 1
    card = read_champion_card("mem://models/m", "penguins")
    assert card is not None and card.pointer.version == 1 and card.location == "mem://models/m/penguins"

    sync = state_sync_for("mem://tuning/t")
    assert isinstance(sync, StoreSync)
    (tmp_path / "pod" / "hyperband").mkdir(parents=True)
    (tmp_path / "pod" / "hyperband" / "oracle.json").write_text("{}")
    assert sync.upload_changed(tmp_path / "pod") == 1
    assert state_sync_for("mem://tuning/t").download_all(tmp_path / "pod2") == 1

    records = records_for("mem://incoming/d")
    assert isinstance(records, StoreRecords)
    record = Record("mem:abc", "mem://incoming/d/a", "run-abc", CLAIMED, "me/1", 0.0)
    with records.slot("mem:abc") as slot:
        token = slot.create(record)
        with pytest.raises(PreconditionFailed):
            slot.create(record)
        slot.replace(record.finished("started", "run-1"), token)


def _card_renderer():
    import json

    from tunepipe.publishing import layout

    def render(version: int, files: dict) -> dict[str, bytes]:
        return {layout.MODEL_CARD_MD: b"# card\n",
                layout.MODEL_CARD: json.dumps({"version": version, "files": files}).encode()}

    return render


def test_without_its_row_the_new_scheme_is_refused_everywhere() -> None:
    """Guards the proof above: the memory store is known only through its row."""
    from tunepipe.storage.uris import check_location

    assert "mem" not in stores.SCHEMES and not stores.is_remote("mem://data/x")
    with pytest.raises(DataError, match=r"unsupported scheme mem://"):
        check_location("mem://data/x.csv")

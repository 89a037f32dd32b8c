"""The object-store protocol, the same on every store: each operation against the real server through
the real client library, built from the environment by the scheme table, and the conditional writes the
publish protocol and the watcher's records rely on (enforced by moto, and by the GCS emulator inside
``place.conditional()``)."""

from __future__ import annotations

import pytest
from store_places import S3, Place

from tunepipe.storage.objectstore import ObjectMissing, PreconditionFailed
from tunepipe.storage.stores import parse, store_for


def test_object_operations_and_checksums(remote: Place, tmp_path) -> None:
    store = store_for(remote.uri("a"))  # the default client: the environment's credentials and endpoint
    assert type(store) is parse(remote.root).row.store  # the store class of the URI's row
    source = tmp_path / "file.bin"
    source.write_bytes(bytes(range(256)) * 4000)
    store.upload_file("a/file.bin", source)
    stored, expected = remote.stored_checksum("a/file.bin", source)
    assert stored == expected
    data, token = store.read("a/file.bin")
    assert data == source.read_bytes() and token and token == remote.version("a/file.bin")
    assert [info.version for info in store.list_objects("a/")] == [token]
    assert store.read("a/absent") is None
    store.copy("a/file.bin", "b/copy.bin")
    assert store.list("") == ["a/file.bin", "b/copy.bin"]
    assert [info.size for info in store.list_objects("b/")] == [len(data)]
    store.download_file("b/copy.bin", tmp_path / "down" / "copy.bin")
    assert (tmp_path / "down" / "copy.bin").read_bytes() == data
    assert not list((tmp_path / "down").glob(".tmp-*"))
    store.delete("b/copy.bin")
    store.delete("b/copy.bin")  # already gone: fine
    assert store.list("b/") == []


def test_conditional_writes_are_enforced_by_the_server(remote: Place) -> None:
    store = remote.store()
    with remote.conditional():
        first = store.write_if_generation("m/CHAMPION", b"one", None)  # create only if absent
        with pytest.raises(PreconditionFailed):
            store.write_if_generation("m/CHAMPION", b"again", None)
        with pytest.raises(PreconditionFailed):
            store.write_if_generation("m/CHAMPION", b"again", 0)  # 0 means "must not exist" too
        second = store.write_if_generation("m/CHAMPION", b"two", first)  # replace only if unchanged
        assert store.read("m/CHAMPION") == (b"two", second)
        with pytest.raises(PreconditionFailed):
            store.write_if_generation("m/CHAMPION", b"stale", first)
        store.delete("m/CHAMPION")
        with pytest.raises(PreconditionFailed):  # replaced-if-unchanged, but it is gone
            store.write_if_generation("m/CHAMPION", b"stale", second)
        assert store.read("m/CHAMPION") is None


# S3 only: the GCS emulator serves the live object whatever generation a download asks for (Cloud
# Storage answers 404), so there is no server here to hold the GCS store to it.
@pytest.mark.parametrize("remote", [S3], indirect=True)
def test_download_at_a_listed_version_refuses_a_replaced_object(remote: Place, tmp_path) -> None:
    store = remote.store()
    remote.put("d/x.csv", b"a,b\n1,2\n")
    (listed,) = store.list_objects("d/")
    store.download_file("d/x.csv", tmp_path / "x.csv", listed.version)
    remote.put("d/x.csv", b"a,b\n3,4\n")
    with pytest.raises(ObjectMissing, match=remote.uri("d/x.csv")):
        store.download_file("d/x.csv", tmp_path / "y.csv", listed.version)
    assert not (tmp_path / "y.csv").exists() and not list(tmp_path.glob(".tmp-*"))
    with pytest.raises(ObjectMissing):
        store.download_file("d/absent.csv", tmp_path / "z.csv")


def test_a_missing_bucket_is_reported_as_missing(remote: Place) -> None:
    missing = f"{parse(remote.root).scheme}://tp-no-such-bucket"
    with pytest.raises(ObjectMissing, match=f"{missing}/x"):
        store_for(missing, remote.client).list_objects("x")

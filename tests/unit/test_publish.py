"""The publish protocol: atomic versions, a consistent champion pointer, failures and retries.

Local folders are tested on the real file system; the object-store protocol against
:class:`FakeStore`, which enforces ``if_generation_match`` (tests/stores runs the same code
against the GCS emulator and moto's S3 server).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fake_store import FakeStore
from google.api_core import exceptions as gexc

from tunepipe import artifacts
from tunepipe.errors import ExportError, ObjectStoreError
from tunepipe.publishing import layout
from tunepipe.publishing.publish import (
    CLAIMS_DIR,
    Champion,
    claim_version,
    local_versions,
    publish_local,
    publish_to_store,
    read_local_champion,
    read_store_champion,
    sha256_bytes,
    sha256_file,
    update_local_champion,
    update_store_champion,
)
from tunepipe.storage.gcs import classify_gcs
from tunepipe.storage.objectstore import RetryPolicy, classify_builtin

pytestmark = pytest.mark.unit


def render(version: int, files: dict) -> dict[str, bytes]:
    card = {"version": version, "files": files}
    return {layout.MODEL_CARD_MD: f"# version {version}\n".encode(),
            layout.MODEL_CARD: json.dumps(card).encode()}


def staged_folder(parent: Path, payload: str) -> Path:
    folder = parent / f".staging-{payload}"
    (folder / "variables").mkdir(parents=True)
    (folder / artifacts.EXTRA_DIR).mkdir()
    (folder / "saved_model.pb").write_text(f"graph {payload}")
    (folder / "variables" / "variables.index").write_text(f"weights {payload}")
    (folder / layout.KERAS_MODEL).write_text(f"keras {payload}")
    return folder


def assert_consistent_local_pointer(model_dir: Path) -> Champion:
    champion = read_local_champion(model_dir)
    assert champion is not None
    card_path = model_dir / str(champion.version) / layout.MODEL_CARD
    assert sha256_file(card_path) == champion.model_card_sha256
    for name, entry in json.loads(card_path.read_text())["files"].items():
        assert sha256_file(model_dir / str(champion.version) / name) == entry["sha256"], name
    return champion


def test_local_publish_renames_the_staged_folder_and_moves_the_pointer(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    assert publish_local(staged_folder(model_dir, "a"), model_dir, render) == 1
    assert publish_local(staged_folder(model_dir, "b"), model_dir, render) == 2
    assert sorted(p.name for p in model_dir.iterdir() if not p.name.startswith(".")) == ["1", "2", "CHAMPION"]
    assert assert_consistent_local_pointer(model_dir).version == 2
    assert (model_dir / "2" / layout.KERAS_MODEL).read_text() == "keras b"
    card = json.loads((model_dir / "2" / layout.MODEL_CARD).read_text())
    assert set(card["files"]) == {"saved_model.pb", "variables/variables.index", layout.KERAS_MODEL}


def test_concurrent_local_publishes_get_distinct_versions_and_a_consistent_pointer(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    staged = [staged_folder(model_dir, str(n)) for n in range(8)]
    versions: list[int] = []
    barrier = threading.Barrier(len(staged))

    def publish(folder: Path) -> None:
        barrier.wait()
        versions.append(publish_local(folder, model_dir, render))

    threads = [threading.Thread(target=publish, args=(folder,)) for folder in staged]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 9))
    assert local_versions(model_dir) == list(range(1, 9))
    assert assert_consistent_local_pointer(model_dir).version == 8  # the pointer only moves forward
    assert not list(model_dir.glob(".staging-*"))


def test_local_pointer_never_moves_back(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    for payload in ("a", "b"):
        publish_local(staged_folder(model_dir, payload), model_dir, render)
    assert update_local_champion(model_dir, 1).version == 2
    assert read_local_champion(model_dir).version == 2


def test_local_publish_refuses_files_changed_after_staging(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    publish_local(staged_folder(model_dir, "a"), model_dir, render)
    staged = staged_folder(model_dir, "b")

    def tampering(version: int, files: dict) -> dict[str, bytes]:
        (staged / layout.KERAS_MODEL).write_text("changed under our feet")
        return render(version, files)

    with pytest.raises(ExportError, match="checksum mismatch"):
        publish_local(staged, model_dir, tampering)
    assert local_versions(model_dir) == [1]
    assert read_local_champion(model_dir).version == 1


# ---- object-store protocol against the precondition-enforcing fake ---------------------------


def test_store_publish_layout_and_pointer(tmp_path: Path) -> None:
    store = FakeStore()
    assert publish_to_store(store, "models/m", staged_folder(tmp_path, "a"), render) == 1
    assert publish_to_store(store, "models/m", staged_folder(tmp_path, "b"), render) == 2
    champion, _ = read_store_champion(store, "models/m")
    assert champion.version == 2
    card = store.objects[f"models/m/2/{layout.MODEL_CARD}"][0]
    assert sha256_bytes(card) == champion.model_card_sha256
    assert store.objects[f"models/m/2/{layout.KERAS_MODEL}"][0] == b"keras b"
    assert not [name for name in store.objects if "/.tmp-" in name]  # temporary prefix removed
    copies = [key for operation, key in store.calls if operation == "copy" and key.startswith("models/m/2/")]
    assert copies[-1] == f"models/m/2/{layout.MODEL_CARD}"  # the card last: marks the version complete


def test_concurrent_store_publishes_claim_distinct_versions(tmp_path: Path) -> None:
    store = FakeStore()
    staged = [staged_folder(tmp_path, str(n)) for n in range(6)]
    versions: list[int] = []
    barrier = threading.Barrier(len(staged))

    def publish(folder: Path) -> None:
        barrier.wait()
        versions.append(publish_to_store(store, "m", folder, render))

    threads = [threading.Thread(target=publish, args=(folder,)) for folder in staged]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 7))
    champion, _ = read_store_champion(store, "m")
    assert champion.version == 6
    assert sha256_bytes(store.objects[f"m/6/{layout.MODEL_CARD}"][0]) == champion.model_card_sha256


def test_claim_skips_a_version_claimed_by_another_run() -> None:
    store = FakeStore()
    store.write_if_generation(f"m/{CLAIMS_DIR}/1", b"other-run", 0)
    assert claim_version(store, "m", "mine") == 2
    assert store.objects[f"m/{CLAIMS_DIR}/2"][0] == b"mine"


def test_claim_recognises_its_own_write_sent_twice() -> None:
    """A retried create whose first attempt did succeed fails its precondition, yet is ours."""
    store = FakeStore()
    real_write = store.write_if_generation

    def write_then_lose_the_answer(key: str, data: bytes, generation: int) -> int:
        real_write(key, data, generation)
        raise_ = real_write  # the retry: the object now exists, so the precondition fails
        return raise_(key, data, generation)

    store.write_if_generation = write_then_lose_the_answer  # type: ignore[method-assign]
    assert claim_version(store, "m", "mine") == 1


def test_pointer_update_rereads_after_losing_a_race() -> None:
    store = FakeStore()
    update_store_champion(store, "m", 1, "sha-1")
    real_read = store.read
    raced = []

    def read_then_someone_writes(key: str):
        found = real_read(key)
        if not raced:  # another run moves the pointer between our read and our write
            raced.append(True)
            store.write_if_generation(key, Champion(3, "sha-3", "t").to_bytes(), found[1])
        return found

    store.read = read_then_someone_writes  # type: ignore[method-assign]
    assert update_store_champion(store, "m", 2, "sha-2").version == 3  # re-read: 3 is later, so it stays
    assert read_store_champion(store, "m")[0].version == 3
    assert update_store_champion(store, "m", 4, "sha-4").version == 4


def test_upload_failing_midway_leaves_nothing_and_the_champion_unchanged(tmp_path: Path) -> None:
    store = FakeStore()
    publish_to_store(store, "m", staged_folder(tmp_path, "a"), render)
    before = dict(store.objects)

    def fail_on_the_keras_file(operation: str, key: str) -> None:
        if operation == "upload_file" and key.endswith(layout.KERAS_MODEL):
            raise ObjectStoreError(f"upload of {key} failed after 6 attempt(s): ServiceUnavailable")

    store.fail = fail_on_the_keras_file
    with pytest.raises(ExportError, match="nothing was published and the champion pointer is unchanged"):
        publish_to_store(store, "m", staged_folder(tmp_path, "b"), render)
    assert store.objects == before


def test_copy_failing_after_the_claim_removes_the_partial_version(tmp_path: Path) -> None:
    store = FakeStore()
    publish_to_store(store, "m", staged_folder(tmp_path, "a"), render)

    def fail_on_second_copy(operation: str, key: str) -> None:
        if operation == "copy" and key.startswith("m/2/") and key.endswith(layout.KERAS_MODEL):
            raise ConnectionResetError("connection reset by peer")

    store.fail = fail_on_second_copy
    with pytest.raises(ExportError, match="connection reset"):
        publish_to_store(store, "m", staged_folder(tmp_path, "b"), render)
    assert not [name for name in store.objects if name.startswith("m/2/") or "/.tmp-" in name]
    assert read_store_champion(store, "m")[0].version == 1
    store.fail = lambda operation, key: None
    assert publish_to_store(store, "m", staged_folder(tmp_path, "c"), render) == 3  # 2 stays claimed, skipped


def test_a_rerun_after_the_pointer_step_failed_reuses_the_complete_version(tmp_path: Path) -> None:
    store = FakeStore()
    publish_to_store(store, "m", staged_folder(tmp_path, "a"), render)

    def pointer_down(operation: str, key: str) -> None:
        if operation == "write_if_generation" and key.endswith(artifacts.CHAMPION_FILE):
            raise ObjectStoreError(f"conditional write of gs://b/{key} failed after 6 attempt(s)")

    store.fail = pointer_down
    with pytest.raises(ExportError, match=r"m/2 is published and complete, but the champion pointer could not be "
                                          r"moved to it \(conditional write of gs://b/m/CHAMPION failed"):
        publish_to_store(store, "m", staged_folder(tmp_path / "run1", "b"), render)
    assert read_store_champion(store, "m")[0].version == 1
    store.fail = lambda operation, key: None
    before = {name for name in store.objects if not name.endswith(artifacts.CHAMPION_FILE)}
    assert publish_to_store(store, "m", staged_folder(tmp_path / "run2", "b"), render) == 2  # same files: reused
    assert {name for name in store.objects if not name.endswith(artifacts.CHAMPION_FILE)} == before
    assert read_store_champion(store, "m")[0].version == 2
    assert publish_to_store(store, "m", staged_folder(tmp_path / "run3", "b"), render) == 2  # and again: a no-op
    assert publish_to_store(store, "m", staged_folder(tmp_path / "run4", "c"), render) == 3  # other files: new


# ---- retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [gexc.ServiceUnavailable("503"), gexc.TooManyRequests("429"), ConnectionResetError("reset"),
              gexc.InternalServerError("500")],
)
def test_transient_errors_are_retried_with_exponential_backoff(error: Exception) -> None:
    slept: list[float] = []
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) <= 3:
            raise error
        return "done"

    policy = RetryPolicy(attempts=5, initial_delay=0.5, multiplier=2.0, max_delay=1.5, jitter=0.0,
                         sleep=slept.append)
    assert policy.call("upload", flaky, classify_gcs) == "done"
    assert slept == [0.5, 1.0, 1.5]  # capped at max_delay


def test_jitter_shortens_each_wait_by_at_most_its_fraction() -> None:
    slept: list[float] = []
    draws = iter([0.0, 1.0, 0.5])
    policy = RetryPolicy(attempts=4, jitter=0.2, sleep=slept.append, random=lambda: next(draws))

    def down() -> None:
        raise gexc.ServiceUnavailable("backend down")

    with pytest.raises(ObjectStoreError):
        policy.call("upload of x", down, classify_gcs)
    assert slept == pytest.approx([0.5, 0.8, 1.8])  # 0.5 * 1, 1.0 * 0.8, 2.0 * 0.9


def test_no_attempt_starts_past_the_deadline() -> None:
    now = [0.0]
    slept: list[float] = []

    def wait(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds + 10.0  # each attempt also takes 10 s

    def down() -> None:
        raise gexc.ServiceUnavailable("backend down")

    policy = RetryPolicy(attempts=10, jitter=0.0, deadline=23.0, sleep=wait, clock=lambda: now[0])
    with pytest.raises(ObjectStoreError, match=r"upload of x failed after 3 attempt\(s\) in 21\.5 s"):
        policy.call("upload of x", down, classify_gcs)
    assert slept == [0.5, 1.0]  # a third wait of 2 s would end at 23.5 s, past the deadline


def test_retries_are_bounded_and_name_the_operation() -> None:
    slept: list[float] = []
    policy = RetryPolicy(attempts=3, sleep=slept.append)

    def down() -> None:
        raise gexc.ServiceUnavailable("backend down")

    with pytest.raises(ObjectStoreError, match=r"upload of x failed after 3 attempt\(s\).*last error: Service"):
        policy.call("upload of x", down, classify_gcs)
    assert len(slept) == 2


def test_permanent_errors_are_not_retried() -> None:
    slept: list[float] = []

    def forbidden() -> None:
        raise gexc.Forbidden("no permission")

    with pytest.raises(ObjectStoreError, match="upload of gs://b/x was refused \\(not retried\\): Forbidden") as raised:
        RetryPolicy(sleep=slept.append).call("upload of gs://b/x", forbidden, classify_gcs)
    assert isinstance(raised.value.__cause__, gexc.Forbidden)
    assert slept == []


@pytest.mark.parametrize("answer", [gexc.NotFound("gone"), gexc.PreconditionFailed("412")])
def test_answers_the_caller_acts_on_pass_through_unretried(answer: Exception) -> None:
    slept: list[float] = []

    def ask() -> None:
        raise answer

    with pytest.raises(type(answer)):
        RetryPolicy(sleep=slept.append).call("read of gs://b/x", ask, classify_gcs)
    assert slept == []


def test_the_default_classification_knows_no_store_library() -> None:
    """RetryPolicy's default retries only Python's own connection errors; a store library's errors are
    sorted by that store's row (here GCS's), never by another store's classifier."""
    assert classify_builtin(ConnectionResetError("reset")) == "transient"
    assert classify_builtin(gexc.ServiceUnavailable("503")) is None
    slept: list[float] = []

    def down() -> None:
        raise gexc.ServiceUnavailable("backend down")

    with pytest.raises(gexc.ServiceUnavailable):  # not a store error to the default: passed through, unretried
        RetryPolicy(sleep=slept.append).call("upload of x", down)
    assert slept == []

"""Hostile locations: one allow-list (tunepipe.storage.uris) for data, baseline, export, tuner and config paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tunepipe.config import load_config
from tunepipe.data.ingest import run_ingest
from tunepipe.data.sources import check_uri
from tunepipe.errors import ConfigError, DataError, ExportError
from tunepipe.publishing.export import model_location
from tunepipe.storage.gcs import bucket_problem
from tunepipe.storage.s3 import s3_bucket_problem
from tunepipe.storage.tuner_state import state_sync_for
from tunepipe.storage.uris import check_location

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("data/train.csv", "data/train.csv"),
        ("/srv/data/train.csv", "/srv/data/train.csv"),
        ("file:///srv/data/train.csv", "/srv/data/train.csv"),
        ("file://localhost/srv/my%20data.csv", "/srv/my data.csv"),
        ("gs://my-bucket/data/part-", "gs://my-bucket/data/part-"),
        ("GS://my-bucket/x", "gs://my-bucket/x"),
        ("gs://my.bucket.example/x", "gs://my.bucket.example/x"),
        ("s3://my-bucket/data/part-", "s3://my-bucket/data/part-"),
        ("S3://my.bucket/x", "s3://my.bucket/x"),
        ("sample://penguins", "sample://penguins"),
        ("data/..hidden/x.csv", "data/..hidden/x.csv"),  # a name starting with dots is no '..' segment
    ],
)
def test_allowed_locations_come_back_normalized(uri: str, expected: str) -> None:
    assert check_location(uri) == expected


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://example.com/d.csv", "unsupported scheme http://"),
        ("https://example.com/d.csv", "unsupported scheme https://"),
        ("s3a://bucket/d.csv", "unsupported scheme s3a://"),
        ("ftp://host/d.csv", "unsupported scheme ftp://"),
        ("://nothing", r"unsupported scheme \(malformed\)"),
        ("../secrets.csv", "'..' path segments are not allowed"),
        ("data/../../etc/passwd", "'..' path segments are not allowed"),
        ("file:///srv/data/../../etc/passwd", "'..' path segments are not allowed"),
        ("file:///srv/%2e%2e/etc/passwd", "'..' path segments are not allowed"),  # decoded before the check
        ("file://otherhost/etc/passwd", "not host 'otherhost'"),
        ("gs://my-bucket/data/../other/x.csv", "'..' segments are not allowed in object names"),
        ("gs://B_A_D/x", "not a valid bucket name"),
        ("s3://my-bucket/data/../other/x.csv", "'..' segments are not allowed in object names"),
        ("s3://my_bucket/x", r"not a valid bucket name \(must hold only lowercase letters, digits, '-' and '\.'"),
        ("s3://ab/x", r"not a valid bucket name \(must be 3-63 characters long\)"),
        ("s3://a..b/x", "not a valid bucket name"),
        ("s3://192.168.1.1/x", "must not be an IP address"),
    ],
)
def test_refused_locations_name_the_value_and_the_rule(uri: str, reason: str) -> None:
    with pytest.raises(DataError, match=re.escape(uri) + ".*" + reason):
        check_location(uri)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ab", "3-63 characters"),
        ("a" * 64, "3-63 characters"),
        ("Upper", "lowercase"),
        ("-starts-with-dash", "start and end"),
        ("ends-with-dot.", "start and end"),
        ("has space", "lowercase"),
        ("goog-bucket", "goog"),
        ("my-google-data", "google"),
        ("192.168.5.4", "IP address"),
        ("a." + "b" * 64 + ".c", "dot-separated part"),
        ("a..b", "dot-separated part"),
    ],
)
def test_bucket_names_follow_the_gcs_rules(name: str, problem: str) -> None:
    found = bucket_problem(name)
    assert found is not None and problem in found


@pytest.mark.parametrize("name", ["abc", "my-bucket_01", "a" * 63, "data.example.com", "x1.y2"])
def test_valid_bucket_names_pass(name: str) -> None:
    assert bucket_problem(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ab", "3-63 characters"),
        ("a" * 64, "3-63 characters"),
        ("Upper", "lowercase"),
        ("my_bucket", "lowercase letters, digits, '-' and '.'"),  # '_' is fine on GCS, not on S3
        ("-starts-with-dash", "start and end"),
        ("ends-with-dot.", "start and end"),
        ("a..b", "adjacent dots"),
        ("10.0.0.1", "IP address"),
    ],
)
def test_s3_bucket_names_follow_the_s3_rules(name: str, problem: str) -> None:
    found = s3_bucket_problem(name)
    assert found is not None and problem in found


@pytest.mark.parametrize("name", ["abc", "my-bucket-01", "a" * 63, "data.example.com", "goog-and-google-ok"])
def test_valid_s3_bucket_names_pass(name: str) -> None:
    assert s3_bucket_problem(name) is None


def test_s3_is_accepted_for_data_schema_tuner_and_export_roots_only() -> None:
    """s3:// is a store like gs://: data, baseline schema, tuner_root and export_root; never a local root or config."""
    config = load_config(overrides={
        "data": {"uri": "s3://my-data/tables/", "label": "y", "baseline_schema_uri": "s3://my-data/schema.json"},
        "export": {"export_root": "S3://my-models/prod"},
        "tuning": {"tuner_root": "s3://my-tuner/state"},
    })
    assert config.data.uri == "s3://my-data/tables/"
    assert config.data.baseline_schema_uri == "s3://my-data/schema.json"
    assert config.export.export_root == "s3://my-models/prod"
    assert config.tuning.tuner_root == "s3://my-tuner/state"
    assert check_uri("s3://my-data/tables/") == "s3://my-data/tables/"
    assert model_location("s3://my-models/prod/", "penguins") == "s3://my-models/prod/penguins"
    with pytest.raises(ConfigError, match=r"data\.allowed_roots.*local folders"):
        load_config(overrides={"data": {"allowed_roots": ["s3://my-data"]}})
    with pytest.raises(ConfigError, match=r"configuration file s3://my-data/c\.yaml: unsupported scheme s3://"):
        load_config("s3://my-data/c.yaml")
    with pytest.raises(ConfigError, match=r"configuration file gs://my-data/c\.yaml: unsupported scheme gs://"):
        load_config("gs://my-data/c.yaml")
    with pytest.raises(ConfigError, match=r"export\.export_root.*'\.\.'"):
        load_config(overrides={"export": {"export_root": "s3://my-models/../x"}})


def test_samples_are_refused_where_only_storage_is_meant() -> None:
    with pytest.raises(DataError, match="unsupported scheme sample://"):
        check_location("sample://penguins", samples=False)


def test_allowed_roots_refuse_paths_outside_and_symlinks_out(tmp_path: Path) -> None:
    root, outside = tmp_path / "allowed", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.csv").write_text("x,y\n1,a\n")
    (root / "ok.csv").write_text("x,y\n1,a\n")
    (root / "link.csv").symlink_to(outside / "secret.csv")
    roots = [str(root)]
    assert check_uri(str(root / "ok.csv"), roots) == str(root / "ok.csv")
    assert check_uri(f"file://{root / 'ok.csv'}", roots) == str(root / "ok.csv")
    for refused in (str(outside / "secret.csv"), f"file://{outside / 'secret.csv'}", str(root / "link.csv")):
        with pytest.raises(DataError, match=re.escape(refused) + ": outside the allowed local roots"):
            check_uri(refused, roots)
    assert check_uri("sample://penguins", roots).endswith("penguins.csv")  # shipped data is always allowed
    assert check_uri("gs://my-bucket/x", roots) == "gs://my-bucket/x"


def test_ingest_refuses_data_outside_allowed_roots_and_writes_nothing(tmp_path: Path) -> None:
    from tunepipe.config import InputLimits

    data = tmp_path / "elsewhere" / "d.csv"
    data.parent.mkdir()
    data.write_text("x,y\n1,a\n2,b\n")
    out = tmp_path / "out"
    limits = InputLimits(allowed_roots=[str(tmp_path / "allowed")])
    with pytest.raises(DataError, match=re.escape(str(data)) + ": outside the allowed local roots"):
        run_ingest(str(data), "y", "auto", out, limits=limits)
    with pytest.raises(DataError, match="outside the allowed local roots"):
        run_ingest("sample://penguins", "species", "auto", out, limits=limits, baseline_schema_uri=str(data))
    assert not out.exists()


def test_configuration_checks_every_location_setting() -> None:
    for overrides, key in [
        ({"data": {"uri": "https://example.com/d.csv", "label": "y"}}, r"data\.uri.*unsupported scheme https://"),
        ({"data": {"baseline_schema_uri": "gs://goog-x/s.json"}}, r"data\.baseline_schema_uri.*goog"),
        ({"data": {"baseline_schema_uri": "sample://penguins"}}, r"data\.baseline_schema_uri.*sample://"),
        ({"data": {"uri": "../d.csv", "label": "y"}}, r"data\.uri.*'\.\.'"),
        ({"data": {"allowed_roots": ["gs://my-bucket"]}}, r"data\.allowed_roots.*local folders"),
        ({"data": {"uri": "/etc/passwd", "label": "y", "allowed_roots": ["/srv"]}}, r"outside the allowed"),
        ({"export": {"export_root": "gs://my-bucket/../x"}}, r"export\.export_root.*'\.\.'"),
        ({"tuning": {"tuner_root": "https://host/t"}}, r"tuning\.tuner_root.*https://"),
    ]:
        with pytest.raises(ConfigError, match=key):
            load_config(overrides=overrides)
    assert load_config(overrides={"data": {"uri": "file:///srv/d.csv", "label": "y"}}).data.uri == "/srv/d.csv"


def test_pipeline_parameters_are_checked_again_where_they_are_used() -> None:
    """The Kubeflow UI can set export_root and tuner_root without a config file."""
    with pytest.raises(ExportError, match=r"export_root: ftp://b/m: unsupported scheme ftp://"):
        model_location("ftp://b/m", "model")
    with pytest.raises(ExportError, match=r"export_root: s3://b/m: 'b' is not a valid bucket name"):
        model_location("s3://b/m", "model")
    with pytest.raises(ExportError, match="not a valid bucket name"):
        model_location("gs://Bad/m", "model")
    assert model_location("file:///srv/models", "penguins") == "/srv/models/penguins"
    with pytest.raises(ConfigError, match=r"tuner_root: http://h/t: unsupported scheme http://"):
        state_sync_for("http://h/t")
    with pytest.raises(ConfigError, match=r"tuner_root: .*'\.\.'"):
        state_sync_for("/srv/tuner/../../etc")


def test_config_file_path_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"configuration file https://example.com/c.yaml: unsupported scheme"):
        load_config("https://example.com/c.yaml")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"seed": 7}))
    assert load_config(f"file://{path}").seed == 7


def test_yaml_tags_that_run_code_are_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f'seed: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ConfigError, match=re.escape(str(path)) + " is not valid YAML"):
        load_config(path)
    assert not marker.exists()
    path.write_text("!!python/object/new:tunepipe.config.Config {}\n")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path)


def test_an_oversized_config_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("seed: 1\n" + "#" * (1024 * 1024) + "\n")
    with pytest.raises(ConfigError, match=re.escape(str(path)) + " is larger than"):
        load_config(path)

"""What a step process pays before it works: only the model steps that need TensorFlow import it
(validate, fingerprint, ingest, preprocess and refusal do not), and every step reports its peak memory in
the line the benchmarks read."""

import inspect
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from components.fingerprint import fingerprint
from components.ingest import ingest
from components.preprocess import preprocess
from components.refusal import record_refusal
from components.validate import validate

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from steplog import step_records  # noqa: E402

HEAVY = ("tensorflow", "keras", "keras_tuner", "matplotlib")


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, check=True)


def _component_imports(component: Callable[..., object]) -> str:
    """The import lines inside a component's body (what its process imports beyond kfp)."""
    lines = [line.strip() for line in inspect.getsource(component).splitlines()]
    return "\n".join(line for line in lines if line.startswith(("from tunepipe", "import tunepipe")))


# The components whose processes must start without TensorFlow or Keras.
LIGHT_COMPONENTS = (validate, fingerprint, ingest, preprocess, record_refusal)


def _heavy_modules_after(imports: str) -> str:
    """The heavy packages a fresh interpreter holds after running ``imports``."""
    result = _fresh_python(f"""
        import sys
        {imports.replace(chr(10), chr(10) + ' ' * 8)}
        print(sorted({{name.split('.')[0] for name in sys.modules}} & set({HEAVY!r})))
    """)
    return result.stdout.strip()


@pytest.mark.parametrize("component", LIGHT_COMPONENTS, ids=lambda component: component.__name__)
def test_light_steps_import_no_tensorflow(component: Callable[..., object]) -> None:
    """Each light component's body imports, alone in a fresh interpreter, load no heavy package."""
    imports = _component_imports(component)
    assert f"tunepipe.{component.__name__.removeprefix('record_')}_step import" in imports
    assert _heavy_modules_after(imports) == "[]"


def test_the_cli_imports_no_tensorflow() -> None:
    imports = """
        import pipelines.cli, pipelines.local_run, tunepipe.modelling.hyperband
        import tunepipe.storage.objectstore, tunepipe.data.sources"""
    assert _heavy_modules_after(textwrap.dedent(imports).strip()) == "[]"


def test_the_startup_check_sees_a_heavy_import() -> None:
    """Guards the guard: the tune component's imports do load Keras."""
    from components.tune import tune

    assert "keras" in _heavy_modules_after(_component_imports(tune))


def test_a_step_process_reports_its_peak_memory_once_in_the_line_the_benchmark_reads() -> None:
    result = _fresh_python("""
        from tunepipe.step_logging import configure_logging
        configure_logging()
        configure_logging()
        block = bytearray(200 * 2**20)  # 200 MiB touched: the peak must cover it
        block[::4096] = b"x" * len(block[::4096])
    """)
    lines = [line for line in result.stdout.splitlines() if "peak memory" in line]
    assert len(lines) == 1
    log = "12:00:00.000 - INFO - Executing task 'ingest'\n" + result.stdout
    log += "12:00:01.500 - INFO - Task 'ingest' finished with status SUCCESS\n"
    record = step_records(log)["ingest"]
    assert record.seconds == pytest.approx(1.5)
    assert record.peak_mib is not None and 200 < record.peak_mib < 2000


def test_step_records_read_kfp_local_logs_with_colours_and_midnight() -> None:
    log = "\n".join([
        "23:59:59.500 - INFO - Executing task \x1b[96m'fingerprint'\x1b[0m",
        "    tunepipe: peak memory of this step: 81 MiB",
        "00:00:00.250 - INFO - Task \x1b[96m'fingerprint'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m",
        "00:00:00.300 - INFO - Executing task 'tune'",
        "00:01:00.300 - INFO - Task 'tune' finished with status FAILURE",
    ])
    records = step_records(log)
    assert list(records) == ["fingerprint", "tune"]
    assert records["fingerprint"].seconds == pytest.approx(0.75)
    assert records["fingerprint"].peak_mib == 81
    assert (records["tune"].seconds, records["tune"].status, records["tune"].peak_mib) == (60.0, "FAILURE", None)

"""What a step process pays before it works: only the model steps that need TensorFlow import it
(validate, fingerprint, ingest, preprocess and refusal do not), and every step reports its peak memory in
the line the benchmarks read."""

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from components import step_functions
from tunepipe.dag import DAG

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from steplog import step_records  # noqa: E402

HEAVY = ("tensorflow", "keras", "keras_tuner", "matplotlib")


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, check=True)


def _component_imports(step: str) -> str:
    """What a step's component process imports beyond kfp: the import lines inside its body (the
    entry point), then the step's module, which the entry point imports by the name the DAG declares."""
    lines = [line.strip() for line in inspect.getsource(step_functions()[step]).splitlines()]
    body = [line for line in lines if line.startswith(("from tunepipe", "import tunepipe"))]
    return "\n".join([*body, f"import {DAG.step(step).module}"])


# The steps whose processes must start without TensorFlow or Keras.
LIGHT_STEPS = ("validate", "fingerprint", "ingest", "preprocess", "record_refusal")


def _heavy_modules_after(imports: str) -> str:
    """The heavy packages a fresh interpreter holds after running ``imports``."""
    result = _fresh_python(f"""
        import sys
        {imports.replace(chr(10), chr(10) + ' ' * 8)}
        print(sorted({{name.split('.')[0] for name in sys.modules}} & set({HEAVY!r})))
    """)
    return result.stdout.strip()


@pytest.mark.parametrize("step", LIGHT_STEPS)
def test_light_steps_import_no_tensorflow(step: str) -> None:
    """Each light component's imports, alone in a fresh interpreter, load no heavy package."""
    imports = _component_imports(step)
    assert "from tunepipe.binding import run_component" in imports
    assert _heavy_modules_after(imports) == "[]"


def test_the_cli_imports_no_tensorflow() -> None:
    imports = """
        import pipelines.cli, pipelines.local_run, tunepipe.modelling.hyperband
        import tunepipe.storage.objectstore, tunepipe.data.sources"""
    assert _heavy_modules_after(textwrap.dedent(imports).strip()) == "[]"


def test_the_startup_check_sees_a_heavy_import() -> None:
    """Guards the guard: the tune component's imports do load Keras."""
    assert "keras" in _heavy_modules_after(_component_imports("tune"))


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

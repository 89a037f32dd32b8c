"""Rewrites tests/golden/pipeline.yaml from the current pipeline (``make golden``).

Run it after an intended change to the pipeline, and review the diff before committing.
"""

import tempfile
from pathlib import Path

from normalize import GOLDEN_COMPILE_ARGS, normalized_yaml  # this folder is on sys.path when run as a script

from pipelines.cli import main

GOLDEN = Path(__file__).with_name("pipeline.yaml")


def regenerate() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        compiled = Path(scratch) / "pipeline.yaml"
        main(["compile", "-o", str(compiled), *GOLDEN_COMPILE_ARGS])
        GOLDEN.write_text(normalized_yaml(compiled.read_text()))
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    regenerate()

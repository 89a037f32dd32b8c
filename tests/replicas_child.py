"""The train step in a fresh process, as a train task's container runs it.

    python tests/replicas_child.py PREPARED OUT DEVICES SEED

PREPARED holds the train, validation and spec folders and ``best`` (best hyperparameters);
the model and history go under OUT; DEVICES 1 trains on one device (``training.placement``
``where: step``), N on N devices of the node (``where: node``). A fresh process is what N devices on a
CPU-only machine need: the CPU is split into logical devices before TensorFlow starts, which
the test process (where TensorFlow runs already) cannot do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tunepipe import artifacts, train_step
from tunepipe.config import Placement, SearchSpace, TrainingConfig


def main() -> None:
    prepared, out, devices, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    placement = Placement(where="node", workers=devices) if devices > 1 else Placement(where="step")
    space = SearchSpace.model_validate_json((prepared / "space.json").read_text())
    training = TrainingConfig.model_validate_json((prepared / "training.json").read_text())
    inputs = train_step.Inputs(prepared / artifacts.TRAIN, prepared / artifacts.VALIDATION, prepared / "spec",
                               prepared / "best", training.model_copy(update={"placement": placement}), space, seed)
    summary = train_step.run(inputs, train_step.Outputs(out / "model", out / "history")).metadata["model"]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

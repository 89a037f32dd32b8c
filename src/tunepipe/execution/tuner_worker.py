"""One process of distributed Hyperband: ``python -m tunepipe.execution.tuner_worker ...``.

The same command runs as the chief and as every worker; Keras Tuner's ``KERASTUNER_TUNER_ID``
(set by :mod:`tunepipe.execution.tuner_processes` or by the pod spec of :mod:`tunepipe.execution.k8s.tuning`) decides
the role. The chief builds the tuner over the shared directory (reloading an earlier search:
resumable like a single process) and serves its oracle with Keras Tuner's own gRPC servicer
until every worker has been told to stop; a worker runs trials until the oracle says stop.

The chief's serving loop is this module's rather than ``keras_tuner``'s ``start_server``,
whose loop sleeps 20 s at a time once the search is over; the servicer and the stop
condition are Keras Tuner's.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from concurrent import futures
from pathlib import Path
from typing import Any

from tunepipe import artifacts
from tunepipe.config import SearchSpace, TuningConfig, validate_section

log = logging.getLogger(__name__)
# Seconds between checks whether the search is over, in the chief.
CHIEF_POLL_S = 0.5


def serve_oracle(tuner: Any, bind: str, poll_s: float = CHIEF_POLL_S) -> int:
    """Serves ``tuner.oracle`` over gRPC at ``bind`` (HOST:PORT) until the search is over.

    Returns:
        The number of trials the oracle holds at the end.
    """
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    tuner.oracle.verbose = 0  # progress comes from the workers' lines and the count below
    tuner.save()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(tuner.oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(bind)
    server.start()
    log.info("tune: chief serving the oracle on %s", bind)
    reported = -1
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(tuner.oracle)):
            finished = sum(1 for t in tuner.oracle.trials.values() if t.status != "RUNNING")
            if finished != reported:
                log.info("tune: chief: %d/%d trials finished", finished, tuner.expected_trials)
                reported = finished
            time.sleep(poll_s)
    finally:
        tuner.oracle.save()
        server.stop(grace=2)
    finished = sum(1 for t in tuner.oracle.trials.values() if t.status != "RUNNING")
    log.info("tune: chief: search over, %d/%d trials finished", finished, tuner.expected_trials)
    return len(tuner.oracle.trials)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tunepipe.execution.tuner_worker", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--train", help="training split folder")
    parser.add_argument("--validation", help="validation split folder")
    parser.add_argument("--spec", help="preprocessing folder")
    parser.add_argument("--inputs", help="instead of the three folders: a tuner-state mirror (gs://) holding them")
    parser.add_argument("--search-space", required=True, help="search space as JSON")
    parser.add_argument("--tuning", required=True, help="tuning section as JSON")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--directory", required=True, help="the shared tuner directory")
    parser.add_argument("--bind", required=True, help="HOST:PORT the chief serves the oracle on")
    return parser


def _input_folders(args: argparse.Namespace, scratch: Path) -> tuple[str, str, str]:
    if args.inputs:
        from tunepipe.storage.tuner_state import StoreSync

        StoreSync(args.inputs).download_all(scratch)
        return (str(scratch / artifacts.TRAIN), str(scratch / artifacts.VALIDATION),
                str(scratch / artifacts.INPUTS_SPEC_DIR))
    if not (args.train and args.validation and args.spec):
        raise SystemExit("error: give --train, --validation and --spec, or --inputs")
    return args.train, args.validation, args.spec


def main(argv: list[str] | None = None) -> int:
    """Runs this process's part of the distributed search; returns the exit status."""
    args = _parser().parse_args(argv)  # before the heavy imports: a bad command fails at once
    from keras_tuner.src.distribute import utils as dist_utils

    from tunepipe.execution.devices import use_mixed_precision_on_gpu
    from tunepipe.modelling.problem import tuning_problem
    from tunepipe.modelling.tune import build_tuner, search_callbacks
    from tunepipe.step_logging import configure_logging

    configure_logging()
    tuning = validate_section(TuningConfig, json.loads(args.tuning), "--tuning")
    with tempfile.TemporaryDirectory(prefix="tunepipe-inputs-") as scratch:
        train_dir, validation_dir, spec_dir = _input_folders(args, Path(scratch))
        space = validate_section(SearchSpace, json.loads(args.search_space), "--search-space")
        hypermodel, train, validation, _ = tuning_problem(train_dir, validation_dir, spec_dir, space,
                                                          tuning.sample_rows, args.seed)
        tuner = build_tuner(hypermodel, tuning, args.seed, args.directory)
        if dist_utils.is_chief_oracle():
            serve_oracle(tuner, args.bind)
        else:
            log.info("tune: worker precision policy %s", use_mixed_precision_on_gpu())
            tuner.search(*train, validation_data=validation, callbacks=search_callbacks(tuning), verbose=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

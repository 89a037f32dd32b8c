"""``--pipeline-root``: the object-store folder where Kubeflow Pipelines keeps a run's artifacts.

One option, one check, shared by ``compile``, ``upload``, ``submit`` and ``schedule create``.
At compile/upload time it becomes the spec's ``defaultPipelineRoot``; at submit/schedule time
the run's ``runtime_config.pipeline_root``, which wins over the compiled default. Without it
the backend's own default applies (KFP's ``defaultPipelineRoot`` config, usually
``minio://mlpipeline/v2/artifacts``).
"""

import argparse

from tunepipe.errors import ConfigError
from tunepipe.storage.locations import SCHEMES

# The schemes KFP v2's launcher opens artifacts under (backend/src/v2/objectstore): GCS and S3,
# the two object stores tunepipe also reads (its scheme table), and the in-cluster MinIO. A local
# path only means something to kfp.local, which has its own option.
PIPELINE_ROOT_SCHEMES = (*(f"{name}://" for name in SCHEMES), "minio://")


def check_pipeline_root(text: str) -> str:
    """``text`` as a pipeline root, trailing slashes removed.

    Raises:
        ConfigError: Empty, scheme-less, another scheme, or no bucket; the message names the value.
    """
    scheme = next((prefix for prefix in PIPELINE_ROOT_SCHEMES if text.startswith(prefix)), None)
    bucket = text.removeprefix(scheme).split("/", 1)[0] if scheme else ""
    if not bucket:
        raise ConfigError(
            f"--pipeline-root must be a bucket URI starting with {', '.join(PIPELINE_ROOT_SCHEMES)} "
            f"(e.g. gs://my-bucket/pipeline-root), got {text!r}"
        )
    return text.rstrip("/")


def add_pipeline_root_option(parser: argparse.ArgumentParser, when: str) -> None:
    """Adds ``--pipeline-root``; ``when`` says in the help what the value does for this command."""
    parser.add_argument(
        "--pipeline-root", metavar="URI",
        help=f"where Kubeflow Pipelines keeps artifacts, {'|'.join(PIPELINE_ROOT_SCHEMES)}bucket/prefix; {when} "
             "(default: the backend's, usually minio://mlpipeline/v2/artifacts)",
    )


def pipeline_root_from(args: argparse.Namespace) -> str | None:
    """The checked ``--pipeline-root``, or None when not given."""
    return None if args.pipeline_root is None else check_pipeline_root(args.pipeline_root)

"""Each step's key result in a few words, for the line ``tunepipe run`` prints when the step ends.

Read from the outputs kfp.local hands back for the task (artifact metadata, output parameters),
the same values the Kubeflow UI shows; never from the step's log. A value that is missing or
malformed gives no result rather than a failed run: this is a line for the reader, nothing more.
"""

from collections.abc import Callable, Mapping
from typing import Any

from tunepipe import artifacts
from tunepipe.config.thresholds import MAIN_METRIC

# How many hex digits of the data fingerprint the line shows (the model card holds all of it).
FINGERPRINT_DIGITS = 12


def _metadata(outputs: Mapping[str, Any], name: str) -> dict[str, Any]:
    return dict(getattr(outputs.get(name), "metadata", None) or {})


def _whole(value: Any) -> int:
    return int(float(value))  # KFP stores metadata numbers as floats: 344.0


def _fingerprint(outputs: Mapping[str, Any]) -> str:
    digest = str(outputs["Output"])
    scheme, _, hexdigest = digest.partition(":")
    return f"{scheme}:{hexdigest[:FINGERPRINT_DIGITS]}" if hexdigest else digest[:FINGERPRINT_DIGITS]


def _ingest(outputs: Mapping[str, Any]) -> str:
    data = _metadata(outputs, "cleaned_data")
    parts = [f"{_whole(data[artifacts.META_ROWS])} rows after cleaning, {data[artifacts.META_TASK]}"]
    if _whole(data.get(artifacts.META_DRIFT_FINDINGS, 0)):
        parts.append(f"{_whole(data[artifacts.META_DRIFT_FINDINGS])} drift findings (see the data report)")
    if _whole(data.get(artifacts.META_CORRUPT_SKIPPED, 0)):
        parts.append(f"{_whole(data[artifacts.META_CORRUPT_SKIPPED])} corrupt images skipped")
    return "; ".join(parts)


def _preprocess(outputs: Mapping[str, Any]) -> str:
    rows = {split: _whole(_metadata(outputs, f"{split}_data")[artifacts.META_ROWS])
            for split in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)}
    return ", ".join(f"{split} {count}" for split, count in rows.items()) + " rows"


def _tune(outputs: Mapping[str, Any]) -> str:
    summary = _metadata(outputs, "best_hyperparameters")
    trials = f"{_whole(summary[artifacts.META_TRIALS])} trials"
    notes = [f"{_whole(summary.get(key, 0))} {word}" for key, word in (
        (artifacts.META_RESUMED_TRIALS, "resumed"), (artifacts.META_FAILED_TRIALS, "failed"))
        if _whole(summary.get(key, 0))]
    if notes:
        trials += f" ({', '.join(notes)})"
    line = f"{trials}, best score {float(summary[artifacts.META_BEST_SCORE]):.4f}"
    prefer = summary.get(artifacts.META_PREFER, "best")
    if prefer != "best":
        line += (f"; prefer {prefer}: trial {summary[artifacts.META_CHOSEN_TRIAL]} "
                 f"({_whole(summary[artifacts.META_PARAMETERS])} parameters, score "
                 f"{float(summary[artifacts.META_CHOSEN_SCORE]):.4f})")
    return line


def _train(outputs: Mapping[str, Any]) -> str:
    model = _metadata(outputs, "model")
    line = (f"{_whole(model[artifacts.META_EPOCHS])} epochs, best epoch {_whole(model[artifacts.META_BEST_EPOCH])} "
            f"(val_loss {float(model[artifacts.META_BEST_VAL_LOSS]):.4f})")
    resumed = _whole(model.get(artifacts.META_RESUMED_FROM_EPOCH, 0))
    kind = model.get(artifacts.META_MODEL_KIND, "single")
    exported = {"bagged": "; exported: the average of the cross-validation models",
                "refit": "; exported: refitted on train + validation"}.get(kind, "")
    return line + (f", resumed after epoch {resumed}" if resumed else "") + exported


def _interval(metadata: Mapping[str, Any], name: str) -> str:
    low, high = metadata.get(name + artifacts.META_CI_LOW), metadata.get(name + artifacts.META_CI_HIGH)
    return "" if low is None or high is None else f" (95% CI {float(low):.4f} to {float(high):.4f})"


def _evaluate(outputs: Mapping[str, Any]) -> str:
    metrics, blessing = _metadata(outputs, "evaluation"), _metadata(outputs, "blessing")
    shown = [f"test {name} {float(metrics[name]):.4f}{_interval(metrics, name)}"
             for name in MAIN_METRIC.values() if name in metrics]
    decision = "blessed" if blessing[artifacts.META_BLESSED] else "NOT blessed"
    if blessing.get(artifacts.META_PUBLISHED) and not blessing[artifacts.META_BLESSED]:
        decision += ", exported anyway (force_export)"
    return "; ".join([*shown, decision])


def _export(outputs: Mapping[str, Any]) -> str:
    model = _metadata(outputs, "published_model")
    return f"published {model['model_name']} version {_whole(model[artifacts.META_VERSION])}"


def _refusal(outputs: Mapping[str, Any]) -> str:
    return "nothing published"


# Step (kfp.local task name) -> its result from the task's outputs.
RESULTS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "fingerprint": _fingerprint, "ingest": _ingest, "preprocess": _preprocess, "tune": _tune, "train": _train,
    "evaluate": _evaluate, "export": _export, "record-refusal": _refusal,
}


def step_result(step: str, outputs: Mapping[str, Any]) -> str:
    """The key result of ``step`` from its kfp.local outputs; ``""`` when there is none to tell.

    Args:
        step: kfp.local's task name (``ingest``, ``record-refusal``, ...).
        outputs: Output name to artifact (with ``metadata``) or parameter value.
    """
    describe = RESULTS.get(step)
    if describe is None:
        return ""
    try:
        return describe(outputs)
    except (KeyError, TypeError, ValueError, AttributeError):
        return ""

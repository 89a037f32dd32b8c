"""The model card: what a published version is, where it came from, and how good it is.

The JSON card (``model_card.json``) is the record; :func:`render_markdown` writes the same
facts for people (``model_card.md``), both inside the version folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import Any

from tunepipe import artifacts

# The model card's keys (model_card.json, and the run's outcome.json, which repeats the card or, for
# a refused model, its task, metrics and blessing): written by the export and refusal steps and
# tunepipe.publishing.export, read by the champion comparison, render_markdown and the run summary.
# The outcome adds tunepipe.artifacts' META_PUBLISHED, META_EXPORT_PATH and META_CHAMPION_VERSION;
# META_VERSION, META_EPOCHS, META_BEST_EPOCH and META_REPORT are card keys declared there.
CARD_TASK = "task"
CARD_LABEL = "label"
CARD_CLASSES = "classes"
CARD_UNSEEN_LABELS = "unseen_labels"
CARD_DATA = "data"
CARD_SCHEMA = "schema"
CARD_CLEANING = "cleaning"
CARD_HYPERPARAMETERS = "hyperparameters"
# The trained architecture's size and latency per row, and how tuning.prefer chose it
# (tunepipe.modelling.preference.Choice as a dict); None on cards of runs before it existed.
CARD_SERVING_COST = "serving_cost"
CARD_TUNING_SAMPLE = "tuning_sample"  # the tune step's tuning_sample.json: rows searched on, of each split
CARD_TRAINED_MODEL = "trained_model"  # history.json's model: kind, members, epochs, rows, measured cost
CARD_METRICS = "metrics"
CARD_METRIC_INTERVALS = "metric_intervals"  # {metric: [low, high]}, 95 % bootstrap (tunepipe.evaluation.bootstrap)
CARD_PER_CLASS = "per_class"
CARD_CROSS_VALIDATION = "cross_validation"
CARD_BLESSING = "blessing"
CARD_FORCED_EXPORT = "forced_export"
CARD_PIPELINE_RUN = "pipeline_run"
CARD_MODEL_NAME = "model_name"
CARD_CREATED = "created"
CARD_TUNEPIPE_VERSION = "tunepipe_version"
CARD_PACKAGES = "packages"
CARD_SIGNATURE = "signature"
CARD_VERIFICATION = "verification"
CARD_FILES = "files"

# Distributions whose versions decide how a model was built and how it loads again.
RECORDED_PACKAGES = ("tunepipe", "keras", "tensorflow", "tensorflow-cpu", "keras-tuner", "kfp", "numpy", "pandas")


def package_versions(names: Sequence[str] = RECORDED_PACKAGES) -> dict[str, str]:
    """Installed versions of the distributions ``names`` (those not installed are left out).

    The one place tunepipe asks for installed versions: the model card records
    :data:`RECORDED_PACKAGES` (the default), the benchmark page its own list.
    """
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_number(cell) for cell in row) + " |" for row in rows]


def interval_text(bounds: Sequence[float] | None) -> str:
    """``[low, high]`` with four decimals, or ``""`` where no interval was recorded (older cards)."""
    return f"[{bounds[0]:.4f}, {bounds[1]:.4f}]" if bounds else ""


def metric_rows(card: dict[str, Any]) -> list[list[Any]]:
    """``[metric, value, 95 % interval]`` for each test metric of a card or a run's outcome."""
    intervals = card.get(CARD_METRIC_INTERVALS) or {}
    return [[name, value, interval_text(intervals.get(name))] for name, value in card[CARD_METRICS].items()]


def champion_row(champion: dict[str, Any]) -> list[Any]:
    """The champion comparison as a blessing-table row: what, candidate, required, result."""
    if champion.get("error"):
        required = f"champion could not be scored: {champion['error']}"
    else:
        rule = champion.get("rule", "not_worse")
        requirement = ("better with 95% confidence" if rule == "better"
                       else f"not worse with 95% confidence by more than margin {champion['margin']:g}")
        required = (f"champion {champion['champion']:.4f}; difference {champion.get('difference', float('nan')):+.4f} "
                    f"(95% CI {champion.get('low', float('nan')):+.4f} to {champion.get('high', float('nan')):+.4f}); "
                    f"{requirement}")
    return [f"{champion['metric']} vs champion v{champion['version']}", champion["candidate"], required,
            "pass" if champion["passed"] else "FAIL"]


def blessing_rows(blessing: dict[str, Any]) -> list[list[Any]]:
    """Each threshold check, then the champion comparison: what, candidate, required, result."""
    rows = [[c["metric"], c["value"], (">= " if c["direction"] == "min" else "<= ") + _number(c["bound"]),
             "pass" if c["passed"] else "FAIL"] for c in blessing.get("checks", [])]
    return rows + ([champion_row(blessing["champion"])] if blessing.get("champion") else [])


def _blessing_lines(blessing: dict[str, Any]) -> list[str]:
    verdict = "blessed" if blessing.get("blessed") else "NOT blessed"
    lines = [f"**{verdict}**: {blessing.get('reason', '')}", ""]
    if blessing.get("forced"):
        lines += ["**Exported because `force_export` was set**, overriding the decision above.", ""]
    checks = blessing_rows(blessing)
    if checks:
        lines += [*_table(["check", "candidate", "required", "result"], checks), ""]
    return lines


def _cv_lines(cv: dict[str, Any] | None) -> list[str]:
    if not cv:
        return []
    rows = [[name, scores["mean"], scores["std"]] for name, scores in cv["metrics"].items()]
    return [f"## {cv['folds']}-fold cross-validation ({cv['rows']} rows of train + validation)", "",
            *_table(["metric", "mean", "std"], rows), ""]


def render_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown: one section per topic, tables for numbers."""
    data, schema, cleaning = card.get(CARD_DATA, {}), card.get(CARD_SCHEMA, {}), card.get(CARD_CLEANING, {})
    run = card.get(CARD_PIPELINE_RUN, {})
    lines = [
        f"# Model card: {card.get(CARD_MODEL_NAME)} version {card.get(artifacts.META_VERSION)}", "",
        f"{card.get(CARD_TASK)} of `{card.get(CARD_LABEL)}`; created {card.get(CARD_CREATED)} by pipeline run "
        f"`{run.get('id') or 'unknown'}`.", "",
        "## Data", "",
        f"- source: `{data.get('source')}`", f"- fingerprint: `{data.get('fingerprint')}`",
        f"- rows after cleaning: {data.get('rows')} (of {cleaning.get('rows_in')} read; "
        f"{cleaning.get('dropped_without_label')} without a label and {cleaning.get('dropped_duplicates')} "
        f"duplicates dropped; {cleaning.get('duplicate_rows', 0)} rows repeat an earlier row)",
        f"- numeric features: {', '.join(schema.get('numeric', [])) or 'none'}",
        f"- categorical features: {', '.join(schema.get('categorical', [])) or 'none'}",
    ]
    for column, actions in cleaning.get("columns", {}).items():
        lines.append(f"- cleaning of `{column}`: {actions}")
    if card.get(CARD_CLASSES):
        lines.append(f"- classes: {', '.join(card[CARD_CLASSES])}")
    lines += ["", "## Metrics on the test split", "", *_table(["metric", "value", "95% CI"], metric_rows(card)), ""]
    unseen = card.get(CARD_UNSEEN_LABELS) or {}
    if unseen:
        listed = ", ".join(f"`{value}` ({count})" for value, count in unseen.items())
        lines += [f"{sum(unseen.values())} test rows hold labels unseen in training, scored as errors: {listed}", ""]
    lines += _cv_lines(card.get(CARD_CROSS_VALIDATION))
    lines += ["## Blessing", "", *_blessing_lines(card.get(CARD_BLESSING, {}))]
    epochs, best = card.get(artifacts.META_EPOCHS), card.get(artifacts.META_BEST_EPOCH)
    lines += ["## Training", "", f"Epochs trained: {epochs} (best {best}).", "",
              *_tuning_sample_lines(card.get(CARD_TUNING_SAMPLE)), *_trained_model_lines(card.get(CARD_TRAINED_MODEL)),
              *_table(["hyperparameter", "value"], list(card.get(CARD_HYPERPARAMETERS, {}).items())), ""]
    lines += _cost_lines(card.get(CARD_SERVING_COST), (card.get(CARD_TRAINED_MODEL) or {}).get("cost"))
    lines += _signature_lines(card)
    lines += ["## Packages", "", *_table(["package", "version"], list(card.get(CARD_PACKAGES, {}).items())), ""]
    return "\n".join(lines)


def _tuning_sample_lines(sample: dict[str, Any] | None) -> list[str]:
    """How many training rows Hyperband searched on, against the final training's every row."""
    if not sample:
        return []
    train = sample["train"]
    if train["kept"] >= train["rows"]:
        return [f"Tuned on every training row ({train['rows']}); final training on the same rows.", ""]
    return [f"Tuned on a sample of {train['kept']} of the {train['rows']} training rows (stratified by "
            f"{train['strata']}, `tuning.sample_rows`); final training on all {train['rows']}.", ""]


def _trained_model_lines(trained: dict[str, Any] | None) -> list[str]:
    """What the exported model is: one network, the average of the cross-validation models, or a refit."""
    if not trained:
        return []
    kind, rows, epochs = trained["kind"], trained["rows"], trained["epochs"]
    described = {
        "bagged": f"the average of the {trained['members']} cross-validation models, each trained {epochs} epochs "
                  f"on {trained['members'] - 1}/{trained['members']} of the {rows} train + validation rows "
                  "(`training.small_data_model: bagged`)",
        "refit": f"one model trained {epochs} epochs on all {rows} train + validation rows "
                 "(`training.small_data_model: refit`)",
    }.get(kind, f"one model, early-stopped on the validation split ({rows} train + validation rows)")
    lines = [f"Exported model: {described}; the test split took no part in its training.", ""]
    devices = trained.get("training_devices") or {}
    if devices.get("replicas", 1) > 1 and devices.get("devices") == "workers":
        lines += [f"Final training ran on {devices['replicas']} worker pods at once (`training.placement` "
                  f"cluster, a Kubeflow Trainer TrainJob, Keras DataParallel on JAX): global batch "
                  f"{devices['global_batch']} "
                  f"({devices['batch_per_replica']} per worker), learning rate {devices['learning_rate']:.3g} "
                  f"(tuned {devices['tuned_learning_rate']:.3g}, scaled for the larger batch).", ""]
    elif devices.get("replicas", 1) > 1:
        lines += [f"Final training ran on {devices['replicas']} {devices['devices'].upper()} replicas at once "
                  f"(`training.placement` node, MirroredStrategy): global batch {devices['global_batch']} "
                  f"({devices['batch_per_replica']} per replica), learning rate {devices['learning_rate']:.3g} "
                  f"(tuned {devices['tuned_learning_rate']:.3g}, scaled for the larger batch).", ""]
    return lines + _rare_class_lines(trained)


def _rare_class_lines(trained: dict[str, Any]) -> list[str]:
    """The class weights of the loss and the decision threshold, where the label is imbalanced, and
    the regression label's scale, where it is not the label's own."""
    lines = []
    scale = trained.get("label_transform")
    if scale:
        lines += [f"The network learns the {scale['transform']} of the label (a strictly positive label of skewness "
                  f"{scale['skewness']:.2f} on the training split; `preprocessing.label_transform`); the exported "
                  "model answers in the label's units.", ""]
    if trained.get("class_weights"):
        shown = ", ".join(f"`{name}` {weight:.3g}" for name, weight in trained["class_weights"].items())
        lines += [f"Class weights in the training loss (the label is imbalanced; "
                  f"`preprocessing.class_weights`): {shown}.", ""]
    decision = trained.get("decision")
    if decision:
        lines += [f"Decision threshold: `{decision['positive_class']}` is predicted when its probability is at least "
                  f"{decision['threshold']:.4f}, chosen on {decision['validation_positives']} validation rows of that "
                  f"class for {decision['metric']} (`training.decision_metric`; validation {decision['metric']} "
                  f"{decision['validation_score']:.4f}, {decision['validation_score_argmax']:.4f} with the most "
                  "probable class). The served `predicted_class` uses it.", ""]
    return lines


def _cost_lines(cost: dict[str, Any] | None, exported: dict[str, Any] | None = None) -> list[str]:
    """Size and latency of the exported model (measured by train) and of the tuned architecture (by
    tune), and the tuning choice that picked it."""
    if not cost and not exported:
        return []
    lines = ["## Size and latency", ""]
    if exported:
        lines += [f"Exported model: {exported['parameters']:.0f} parameters; prediction latency per row measured in "
                  f"the train step: {exported['latency_b1_us']:.0f} µs at batch 1, "
                  f"{exported['latency_b256_us']:.1f} µs at batch 256.", ""]
    if not cost:
        return lines
    lines += [f"Tuned architecture: {cost['parameters']} parameters; prediction latency per row measured in the tune "
              f"step: {cost['latency_b1_us']:.0f} µs at batch 1, {cost['latency_b256_us']:.1f} µs at batch 256.", ""]
    if cost["prefer"] != "best" and cost["chosen_trial"] != cost["best_trial"]:
        lines += [f"Chosen by `tuning.prefer: {cost['prefer']}`: trial {cost['chosen_trial']} ({cost['objective']} "
                  f"{cost['chosen_score']:.4f}) among {cost['candidates']} trials within one standard error "
                  f"({cost['noise']:.4f}) of the best, trial {cost['best_trial']} ({cost['best_score']:.4f}).", ""]
    return lines


def _signature_lines(card: dict[str, Any]) -> list[str]:
    """The serving contract: each signature's inputs, the named outputs, the verification."""
    signature = card.get(CARD_SIGNATURE, {})
    # older cards list only serving_default's inputs and one unnamed output
    signatures = signature.get("signatures") or {"serving_default": {"inputs": signature.get("inputs", {})}}
    rows = [[name, input_name, spec["column"], spec["dtype"], spec["shape"], spec.get("meaning", "")]
            for name, described in signatures.items() for input_name, spec in described["inputs"].items()]
    outputs = signature.get("outputs") or {"output": signature.get("output", {})}
    verification = card.get(CARD_VERIFICATION, {})
    return ["## Serving signature", "", *_table(["signature", "input", "column", "dtype", "shape", "meaning"], rows),
            "", *_table(["output", "dtype", "shape", "meaning"],
                        [[name, spec.get("dtype"), spec.get("shape"), spec.get("meaning", "")]
                         for name, spec in outputs.items()]), "",
            f"Verified: every signature reproduced the evaluated model on {verification.get('rows')} raw test rows "
            f"(and rows with missing cells) within {verification.get('tolerance')}.", ""]

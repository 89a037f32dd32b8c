"""Every artifact file name and metadata key, declared once.

Writers (core steps and components), readers (later steps, the CLI summary) and tests
import these names instead of repeating string literals.
"""

from pathlib import Path

# An artifact's folder (or file) as the step functions take it: a string from KFP, a Path in tests.
PathLike = str | Path

# ingest
CLEANED_DATA_FILE = "data.parquet"
# The streaming path (data larger than memory) writes Parquet shards in a folder instead of one file.
CLEANED_SHARDS_DIR = "shards"
SCHEMA_FILE = "schema.json"
DATA_REPORT_FILE = "data_report.json"
DATA_REPORT_HTML_FILE = "data_report.html"

# preprocess
# Every split, however ingest read the data: a folder of Parquet shards (one for a table read as one
# batch) with the split's metadata beside them, installed in one rename (tunepipe.data.split).
SPLIT_SHARDS_DIR = "shards"
SPLIT_METADATA_FILE = "_split.json"  # inside the shards folder; "_" keeps Parquet readers from taking it as data
PREPROCESSING_SPEC_FILE = "preprocessing.json"

# tune
BEST_HYPERPARAMETERS_FILE = "best_hyperparameters.json"
TRIALS_FILE = "trials.csv"
TUNING_CHOICE_FILE = "choice.json"  # beside the best hyperparameters: which trial tuning.prefer picked, its cost
TUNING_SAMPLE_FILE = "tuning_sample.json"  # beside them too: the rows searched on (tuning.sample_rows) of each split

# tune: the HTML report for the Kubeflow UI
TUNING_REPORT_FILE = "tuning_report.html"
# tune: the tuner's own folder inside the trials artifact when no tuner_root is configured
TUNER_DIR = "tuner"
# tune, tuning.placement cluster: the inputs staged next to the tuner state for the worker pods
TUNER_INPUTS_DIR = "inputs"
INPUTS_SPEC_DIR = "preprocessing"

# train
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
CROSS_VALIDATION_FILE = "cross_validation.json"  # beside the history, on small data (train cross-validates)
HISTORY_MODEL = "model"  # history.json's description of the exported model (tunepipe.modelling.ensemble.describe)
# train's backup folder (resume after preemption): BackupAndRestore's folder, early-stopping state
BACKUP_KERAS_DIR = "backup"
BACKUP_BEST_WEIGHTS_FILE = "best.weights.npz"  # tunepipe.modelling.train.save_training_state
BACKUP_STATE_FILE = "early_stopping.json"
# train, training.placement cluster: what the TrainJob's process 0 writes beside model.keras (jax_worker)
WORKERS_RESULT_FILE = "workers.json"

# evaluate
EVALUATION_FILE = "evaluation.json"
BLESSING_FILE = "blessing.json"
REPORT_FILE = "report.html"  # the HTML report: training curves, confusion matrix, per-class table, residuals

# the pipeline's outcome: published model or refusal (written by export or by record_refusal)
OUTCOME_FILE = "outcome.json"

# export (inside <export_root>/<model_name>/<version>/): the SavedModel at the version root, where
# TF Serving, KServe and Vertex AI look; the rest in assets.extra/, which servers ignore
# (tunepipe.publishing.layout names the paths, and those of the older layout it still reads)
EXTRA_DIR = "assets.extra"
SAVED_MODEL_DIR = "saved_model"  # the older layout: <version>/saved_model/
MODEL_CARD_FILE = "model_card.json"
MODEL_CARD_MD_FILE = "model_card.md"
WARMUP_FILE = "tf_serving_warmup_requests"  # TF Serving's name, read from assets.extra/ at load
# inside <export_root>/<model_name>/: JSON naming the current version and its model card's SHA-256
CHAMPION_FILE = "CHAMPION"

# metadata keys written on KFP artifacts
META_ROWS = "rows"
META_FINGERPRINT = "data_fingerprint"
META_KIND = "kind"
META_DRIFT_FINDINGS = "drift_findings"
META_CORRUPT_SKIPPED = "corrupt_images_skipped"
META_TASK = "task"
META_SPLIT = "split"
META_TRIALS = "trials"
META_BEST_SCORE = "best_score"
META_TUNER_DIRECTORY = "tuner_directory"
META_RESUMED_TRIALS = "resumed_trials"
META_PREFER = "prefer"
META_CHOSEN_TRIAL = "chosen_trial"
META_CHOSEN_SCORE = "chosen_score"
META_PARAMETERS = "parameters"
META_TUNED_ROWS = "tuned_on_train_rows"
META_FAILED_TRIALS = "failed_trials"
META_RESUMED_FROM_EPOCH = "resumed_from_epoch"
META_EPOCHS = "epochs_trained"
META_BEST_EPOCH = "best_epoch"
META_BEST_VAL_LOSS = "best_val_loss"
META_MODEL_KIND = "model_kind"  # single, bagged or refit (training.small_data_model)
META_EXPORT_PATH = "export_path"
META_VERSION = "version"
META_BLESSED = "blessed"
META_PUBLISHED = "published"
META_CHAMPION_VERSION = "champion_version"
META_REPORT = "report"
# Suffixes of a 95 % interval's ends, after a metric's name (accuracy_ci_low), in the UI metrics and metadata.
META_CI_LOW = "_ci_low"
META_CI_HIGH = "_ci_high"

# split names
TRAIN, VALIDATION, TEST = "train", "validation", "test"

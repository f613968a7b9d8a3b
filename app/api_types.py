"""The shapes of the Tunesmith API's replies, as the UI's client sees them (``TypedDict``s, no behaviour)."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class Health(TypedDict, total=False):
    status: str
    version: str
    device: str
    gpus: list[Any]


class Dataset(TypedDict, total=False):
    id: str
    name: str
    format: str
    num_rows: int
    size_bytes: int
    created_at: str
    source_filename: str
    builtin: bool
    warnings: list[dict[str, Any]]
    warning_count: int


class UploadedDataset(Dataset, total=False):
    duplicates_dropped: int
    datasets: list[Dataset]  # every dataset the upload created (one per data file of a zip); the first is above


class Message(TypedDict):
    role: str
    content: str


class PreviewRow(TypedDict, total=False):
    messages: list[Message]


class DatasetDetail(Dataset, total=False):
    preview: list[PreviewRow]


class ImportSkipped(TypedDict, total=False):
    name: str
    reason: str
    errors: list[dict[str, Any]]  # invalid records: {location, field, message}, the first 20
    error_count: int


class ImportReused(TypedDict):
    name: str  # the dataset_info.json entry
    dataset: Dataset  # the registered dataset with the same rows


class ImportResult(TypedDict, total=False):
    imported: list[Dataset]
    skipped: list[ImportSkipped]
    reused: list[ImportReused]


class Model(TypedDict, total=False):
    id: str
    path: str
    bundled: bool


class Job(TypedDict, total=False):
    id: str
    name: str | None
    state: JobState
    config: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    progress: float
    step: int
    total_steps: int | None
    latest_loss: float | None
    error: str | None
    hint: str | None
    output: Literal["adapter", "model"] | None
    has_merged: bool
    gpus: list[int]
    engine: dict[str, Any] | None
    stop_requested: bool
    waiting_for: str | None
    stopped_early_at_step: int | None
    run_dir: str
    tags: list[str]
    notes: str


class MetricRow(TypedDict, total=False):
    step: int
    total_steps: int
    epoch: float
    loss: float
    eval_loss: float
    lr: float
    grad_norm: float
    tokens_per_s: float
    eta_s: float
    time: float


class MergeResult(TypedDict, total=False):
    path: str
    files: list[Any]


class ChatTarget(TypedDict, total=False):
    label: str
    kind: Literal["base", "adapter", "merged", "model"]
    model_dir: str
    adapter_dir: str | None


class ChatReply(TypedDict, total=False):
    text: str
    tokens: int
    seconds: float
    trimmed_turns: int
    target: ChatTarget

"""Request and response models of the HTTP API, one module per resource, in families (``JobCreate`` /
``JobPublic`` / ``JobsPublic``), the FastAPI full-stack template's way. Pure models: no file I/O here (a job's
run-dir facts come in as :class:`backend.config.rundir.RunFacts`)."""

from backend.api.schemas.chat import (
    ChatCreate,
    ChatMessage,
    ChatReply,
    ChatTargetPublic,
)
from backend.api.schemas.datasets import (
    DatasetCreated,
    DatasetDetail,
    DatasetProblem,
    DatasetPublic,
    DatasetRename,
    DatasetsPublic,
    DatasetUploaded,
    IdentityCreate,
    IdentityText,
    ImportPath,
    ImportResult,
    ImportReused,
    ImportSkipped,
)
from backend.api.schemas.evaluations import (
    EvaluationParams,
    EvaluationProgress,
    EvaluationPublic,
    EvaluationsPublic,
    JobEvaluationCreate,
    ModelEvaluationCreate,
)
from backend.api.schemas.jobs import (
    JobCreate,
    JobPublic,
    JobsPublic,
    LaunchPreview,
    LogsPublic,
    MergePublic,
    MetricsPublic,
)
from backend.api.schemas.models import (
    ModelPublic,
    ModelsPublic,
    SuggestionPublic,
)
from backend.api.schemas.system import (
    GpuSlotPublic,
    GpuSlotsPublic,
    QueuedJobPublic,
)

__all__ = [
    "ChatCreate",
    "ChatMessage",
    "ChatReply",
    "ChatTargetPublic",
    "DatasetCreated",
    "DatasetDetail",
    "DatasetProblem",
    "DatasetPublic",
    "DatasetRename",
    "DatasetUploaded",
    "DatasetsPublic",
    "EvaluationParams",
    "EvaluationProgress",
    "EvaluationPublic",
    "EvaluationsPublic",
    "JobEvaluationCreate",
    "GpuSlotPublic",
    "GpuSlotsPublic",
    "IdentityCreate",
    "IdentityText",
    "ImportPath",
    "ImportResult",
    "ImportReused",
    "ImportSkipped",
    "JobCreate",
    "JobPublic",
    "JobsPublic",
    "LaunchPreview",
    "LogsPublic",
    "MergePublic",
    "MetricsPublic",
    "ModelEvaluationCreate",
    "ModelPublic",
    "ModelsPublic",
    "QueuedJobPublic",
    "SuggestionPublic",
]

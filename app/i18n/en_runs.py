"""English: strings of the runs area. Part of :data:`app.i18n.en.MESSAGES` (one part per area keeps each catalog module
small and lets areas grow without touching each other)."""

from __future__ import annotations

MESSAGES: dict[str, str] = {}

MESSAGES.update({
    "lineage.title": "Lineage: datasets, parent run, exports",
    "lineage.datasets": "datasets",
    "lineage.base_model": "base model",
    "lineage.parent": "continued from",
    "lineage.children": "continued by",
    "lineage.exports": "exports",
    "lineage.role_train": "training",
    "lineage.role_validation": "validation",
    "lineage.rows": "{rows} rows",
    "lineage.weight": "weight {weight}",
    "lineage.dataset_deleted": "deleted from the registry since",
    "lineage.run_deleted": "run <code>{id}</code> (deleted since)",
    "lineage.fresh": "nothing: a fresh start from the base model",
    "lineage.none": "none",
    "lineage.no_exports": "none yet (Export tab)",
    "lineage.open_parent": "↰ Select the parent run",
    "runs.continue": "⏩ Continue training",
    "runs.continue_note": "⏩ Continuing run `{id}`: the form holds its settings and **Continue from run** is set, so the new run starts from its adapter or trained model. Pick more epochs or new data, then Start.",
    "chart.grad_norm": "grad norm",
    "chart.grad_norm_title": "Gradient norm",
    "chart.lr": "learning rate",
    "chart.lr_title": "Learning rate",
    "chart.gpu_mem": "memory",
    "chart.gpu_mem_title": "GPU memory (peak)",
    "chart.no_points": "No step logged yet: the charts appear with the first one.",
    "chart.compare_no_points": "Pick runs that have logged a step.",
})

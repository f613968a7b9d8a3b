"""English: strings of the models area. Part of :data:`app.i18n.en.MESSAGES` (one part per area keeps each catalog module
small and lets areas grow without touching each other)."""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    "tab.models": "Models",
    "models.intro": "The base models this studio can train, and downloads from a model hub. A downloaded model "
                    "appears here and in the **Train** tab's base model list.",
    "models.list_head": "### Models in this studio",
    "models.refresh": "↻ Refresh",
    "models.col_name": "Model",
    "models.col_size": "Size",
    "models.col_kind": "Kind",
    "models.col_where": "Folder",
    "models.kind_bundled": "bundled",
    "models.kind_downloaded": "downloaded from {repo}",
    "models.kind_local": "local folder",
    "models.none": "No models yet: download one below, or put a Hugging Face-format model folder under the "
                   "studio's models folder.",
    "models.list_failed": "Could not list the models: {error}",
    "models.download_head": "### Download from a model hub",
    "models.source_line": "Downloads come from {where}.",
    "models.no_source": "⚠ No model hub can be used now: {reason}. The models already here keep working.",
    "models.repo": "Hub model id",
    "models.repo_help": "As on the model's hub page: org/name.",
    "models.revision": "Revision",
    "models.revision_help": "A branch, tag or commit; empty = the default branch.",
    "models.source": "Source",
    "models.source_help": "Hugging Face (or the mirror the server is set up with); ModelScope needs its client installed "
                          "on the server.",
    "models.token": "Access token (optional)",
    "models.token_help": "Only for gated or private models. Sent to the studio's server for this download only: "
                         "never saved, never shown again.",
    "models.plan": "Check size",
    "models.start": "Download",
    "models.cancel": "Cancel download",
    "models.need_repo": "⚠ Enter a hub model id first (org/name).",
    "models.plan_summary": "**{repo}** @ `{revision}` (commit `{commit}`) → model **{model_id}**: {files} files, "
                           "{total}.",
    "models.plan_installed": "✓ **{model_id}** is in this studio already: nothing to download. (To fetch it again, delete or rename its folder first.)",
    "models.plan_resume": "{present} were downloaded by an earlier attempt: only {needed} more will be fetched.",
    "models.plan_fits": "✓ It fits: {free} free on the models disk ({reserve} stay reserved). Press **Download**.",
    "models.plan_too_big": "✗ It does not fit: it needs {needed} more and the models disk has {free} free, of which "
                           "{reserve} stay reserved. Free disk space, or start the studio with `TUNESMITH_MODELS_DIR` on "
                           "a larger disk.",
    "models.progress": "{percent}% · {done} of {total}",
    "models.progress_file": "now: {file}",
    "models.progress_speed": "{speed}/s · {eta} left",
    "models.running": "⏳ Downloading **{repo}**…",
    "models.succeeded": "✓ **{repo}** is downloaded as **{model_id}**: it is in the list above and in the Train "
                        "tab's base models.",
    "models.failed": "✗ The download of **{repo}** failed: {error}",
    "models.cancelled": "The download of **{repo}** was cancelled. What was fetched is kept: press **Download** "
                        "again to resume.",
    "models.interrupted": "The studio stopped during the download of **{repo}**. What was fetched is kept: press "
                          "**Download** again to resume.",
    "models.cancelling": "Cancelling…",
    "models.why.403": "The hub refused access: the model is gated or private. Accept its licence on its hub page, "
                      "then enter a token with access.",
    "models.why.404": "The hub has no such model or revision (or it is private: enter a token).",
    "models.why.409": "This model is already in the studio or is downloading now.",
    "models.why.422": "That is not a model id or revision the studio can download.",
    "models.why.503": "The model hub cannot be reached: the server is offline, runs with `HF_HUB_OFFLINE`, or its "
                      "`HF_ENDPOINT` is wrong. Models already in the studio keep working.",
    "models.why.507": "The models disk is too small for this model.",
    "models.downloads_head": "Recent downloads (pick one to download it again: an unfinished one resumes)",
    "models.col_repo": "Hub model",
    "models.col_state": "State",
    "models.col_done": "Done",
    "models.col_started": "Started",
    "models.state.running": "downloading",
    "models.state.succeeded": "done",
    "models.state.failed": "failed",
    "models.state.cancelled": "cancelled",
    "models.state.interrupted": "interrupted",
}

"""Export tab, format panels: a GGUF file (with an Ollama Modelfile) or a safetensors export with a chosen dtype and
shard size, exported on the server (``POST /jobs/{id}/export``) while the page polls its progress; the run's
earlier exports with their sizes. Every string goes through :func:`app.i18n.t`.
"""

from __future__ import annotations

import time

import gradio as gr
import pandas as pd

from app.client import ApiError, TunesmithClient
from app.downloads import scratch_dir
from app.format import error_markdown, fmt_bytes, fmt_time, state_text
from app.i18n import DEFAULT, localized, request_lang, t

FILE_COLUMNS = ["file", "size"]
EXPORT_COLUMNS = ["export", "state", "files", "size", "created"]
POLL_S = 1.0
# the GGUF types the API offers, with what they are for and their size relative to f16
GGUF_CHOICES = [(t(f"gguf.{q}"), q) for q in ("q4_k_m", "q5_k_m", "q6_k", "q8_0", "f16", "bf16")]
DTYPE_CHOICES = [(t("st.dtype_base"), "base"), ("bf16", "bf16"), ("fp16", "fp16"), ("fp32", "fp32")]

def exports_frame(exports: list[dict], lang: str = DEFAULT) -> pd.DataFrame:
    rows = [[e.get("id"), state_text(e.get("state"), lang), len(e.get("files") or []),
             fmt_bytes(e["bytes"]) if e.get("bytes") is not None else "—", fmt_time(e.get("created_at")) or "—"]
            for e in exports]
    return pd.DataFrame(rows, columns=[t(f"exports.col_{key}", lang) for key in EXPORT_COLUMNS])


def files_frame(export: dict, lang: str = DEFAULT) -> pd.DataFrame:
    return pd.DataFrame([[f["name"], fmt_bytes(f["bytes"])] for f in export.get("files") or []],
                        columns=[t("export.col_file", lang), t("export.col_size", lang)])


def export_options(kind: str, quantization: str, dtype: str, max_shard_size: str, modelfile: bool,
                   model_card: bool) -> dict:
    """The POST /jobs/{id}/export body for the choices on the page."""
    if kind == "gguf":
        return {"format": "gguf", "quantization": quantization, "modelfile": modelfile, "model_card": model_card}
    options = {"format": "safetensors", "max_shard_size": max_shard_size.strip() or "2GB", "model_card": model_card}
    return options | ({"dtype": dtype} if dtype != "base" else {})


def wait_for_export(client: TunesmithClient, job_id: str, options: dict, progress) -> dict:
    """Start (or reuse) the export and poll it until it has finished; ApiError when it failed."""
    state = client.start_export(job_id, options)
    while state.get("state") == "running":
        stage = state.get("progress") or {}
        progress(float(stage.get("fraction") or 0.0), desc=str(stage.get("stage") or "exporting"))
        time.sleep(POLL_S)
        state = client.get_export(job_id, state["id"])
    if state.get("state") != "succeeded":
        raise ApiError(f"Export failed: {state.get('error')}", details=[state["hint"]] if state.get("hint") else None)
    return state


def build(client: TunesmithClient, job: gr.Dropdown) -> None:
    """The GGUF and safetensors panels and the exports table, for the run picked in ``job``."""
    with gr.Row(equal_height=False):
        with gr.Column(variant="panel"):
            gr.Markdown(t("gguf.head"))
            quantization = gr.Dropdown(label=t("gguf.quantization"), choices=GGUF_CHOICES, value="q4_k_m",
                                       elem_id="gguf-quantization")
            with gr.Row():
                modelfile = gr.Checkbox(label=t("gguf.modelfile"), value=True, elem_id="gguf-modelfile")
                gguf_card = gr.Checkbox(label=t("exports.card"), value=True, elem_id="gguf-card")
            gguf_start = gr.Button(t("gguf.start"), interactive=False, elem_id="gguf-start")
            gguf_download = gr.DownloadButton(t("gguf.download"), visible=False, variant="primary",
                                              elem_id="gguf-download")
            gguf_files = gr.Dataframe(visible=False, interactive=False, label=t("gguf.files"),
                                      elem_id="gguf-files")
        with gr.Column(variant="panel"):
            gr.Markdown(t("st.head"))
            dtype = gr.Dropdown(label=t("st.dtype"), choices=DTYPE_CHOICES, value="base", elem_id="st-dtype")
            shard = gr.Textbox(label=t("st.shard"), value="2GB", max_lines=1, elem_id="st-shard")
            st_card = gr.Checkbox(label=t("exports.card"), value=True, elem_id="st-card")
            st_start = gr.Button(t("st.start"), interactive=False, elem_id="st-start")
            st_download = gr.DownloadButton(t("st.download"), visible=False, variant="primary",
                                            elem_id="st-download")
            st_files = gr.Dataframe(visible=False, interactive=False, label=t("st.files"), elem_id="st-files")
    exports_table = gr.Dataframe(value=exports_frame([]), interactive=False, label=t("exports.list"),
                                 elem_id="export-list")
    status = gr.Markdown(elem_id="export-format-status")

    def list_for(job_id: str | None, lang: str = DEFAULT):
        if not job_id:
            return exports_frame([], lang)
        try:
            return exports_frame(client.list_exports(job_id), lang)
        except ApiError:
            return gr.skip()

    def start_export(kind: str):
        def handler(request: gr.Request, job_id: str | None, quantization_value: str, dtype_value: str,
                    shard_value: str, modelfile_value: bool, card_value: bool, progress: gr.Progress = gr.Progress()):
            lang = request_lang(request)
            hidden = gr.DownloadButton(visible=False), gr.Dataframe(visible=False)
            if not job_id:
                return *hidden, gr.skip(), t("export.pick_first", lang)
            options = export_options(kind, quantization_value, dtype_value, shard_value, modelfile_value, card_value)
            try:
                result = wait_for_export(client, job_id, options, progress)
                progress(1.0, desc=t("exports.fetching", lang))
                path = client.download_export(job_id, result["id"], scratch_dir() / f"{job_id}-{result['id']}.zip")
            except ApiError as exc:
                return (*hidden, list_for(job_id, lang),
                        t("exports.failed", lang, kind=kind.upper()) + "\n\n" + error_markdown(exc, lang))
            notes = "".join(f"\n\nℹ {note}" for note in result.get("notes") or [])
            size = fmt_bytes(result.get("bytes") or path.stat().st_size)
            ready = t("exports.reused" if result.get("reused") else "exports.ready", lang, id=result["id"], job=job_id,
                      count=len(result.get("files") or []), size=size)
            return (gr.DownloadButton(value=str(path), label=t("exports.download", lang, id=result["id"], size=size),
                                      visible=True),
                    gr.Dataframe(value=files_frame(result, lang), visible=True), list_for(job_id, lang), ready + notes)
        return handler

    export_inputs = [job, quantization, dtype, shard, modelfile, gguf_card]
    gguf_start.click(start_export("gguf"), inputs=export_inputs,
                     outputs=[gguf_download, gguf_files, exports_table, status])
    st_start.click(start_export("safetensors"), inputs=[job, quantization, dtype, shard, modelfile, st_card],
                   outputs=[st_download, st_files, exports_table, status])
    job.change(localized(lambda lang, job_id: (list_for(job_id, lang), *start_buttons(job_id))), inputs=[job],
               outputs=[exports_table, gguf_start, st_start], show_progress="hidden")


def start_buttons(job_id: str | None) -> tuple[dict, dict]:
    """Export GGUF / Export safetensors: usable only once a run is picked (they said "pick a run" when pressed)."""
    return gr.update(interactive=bool(job_id)), gr.update(interactive=bool(job_id))

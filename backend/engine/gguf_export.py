"""Export a finished run: a GGUF file (llama.cpp's converter + quantizer) or a standalone safetensors model.

    python -m backend.engine export --run-dir D --out OUT --format gguf --quantization q4_k_m
    python -m backend.engine export --run-dir D --out OUT --format safetensors [--dtype bf16] [--max-shard-size 2GB]

LoRA/QLoRA runs are merged into their base first (``backend.engine.merge.merge_adapter``, the one merge of the
project); full/freeze runs are converted as trained. GGUF: llama.cpp's own ``convert_hf_to_gguf.py`` writes
f16/bf16/q8_0 directly; k-quants (q4_k_m, q5_k_m, q6_k) are made from the f16 file by llama.cpp's quantizer
through llama-cpp-python (``llama_model_quantize``). Nothing here falls back to another type: a missing tool is an
EngineError naming the install command.

OUT is a staging folder owned by the caller (``backend.exports.service``), which renames it into place once the
files are complete. ``OUT/progress.json`` says which stage is running: ``{"stage", "fraction"}``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from backend.config import rundir
from backend.engine.failures import EngineError
from backend.exports.formats import CONVERTER_TYPES, INSTALL_COMMAND, QUANTIZER_TYPES, converter_script
from backend.fsio import atomic_write_json

PROGRESS_FILE = "progress.json"
_FTYPES = {"q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M", "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K"}


def report(out_dir: Path, stage: str, fraction: float) -> None:
    atomic_write_json(out_dir / PROGRESS_FILE, {"stage": stage, "fraction": round(fraction, 3)})
    print(f"export: {stage} ({fraction:.0%})", flush=True)


def standalone_model(run_dir: Path, scratch: Path) -> Path:
    """An HF model directory holding the run's weights for the converter: full/freeze runs' model/ as trained,
    LoRA/QLoRA runs merged into ``scratch`` in fp32, so the converter rounds once, straight to the GGUF type."""
    from backend.engine.merge import merge_adapter

    if (run_dir / rundir.MODEL_DIR / "config.json").is_file():
        return run_dir / rundir.MODEL_DIR
    return merge_adapter(run_dir, dtype="fp32", out_dir=scratch)


def convert_to_gguf(model_dir: Path, outfile: Path, outtype: str) -> Path:
    """Run llama.cpp's converter on an HF model directory; its last error line becomes the EngineError."""
    script = converter_script()
    if not script.is_file():
        raise EngineError(f"llama.cpp's converter is not installed ({script})", f"run `{INSTALL_COMMAND}`")
    argv = [sys.executable, str(script), str(model_dir), "--outfile", str(outfile), "--outtype", outtype]
    # the converter must use the gguf-py it ships with (newer than the PyPI gguf), which NO_LOCAL_GGUF would stop
    env = {key: value for key, value in os.environ.items() if key != "NO_LOCAL_GGUF"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
    if proc.returncode != 0 or not outfile.is_file():
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise EngineError(f"llama.cpp's converter failed: {lines[-1] if lines else f'exit code {proc.returncode}'}",
                          "the model's architecture or tokenizer may not be supported by this llama.cpp version; "
                          "the export log has the converter's output")
    return outfile


def quantize_gguf(source: Path, target: Path, quantization: str) -> Path:
    """llama.cpp's quantizer (llama_model_quantize) from an f16 GGUF to ``quantization``."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise EngineError(f"quantization {quantization!r} needs llama-cpp-python, which is not installed",
                          f"run `{INSTALL_COMMAND}`") from exc
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, _FTYPES[quantization])
    params.nthread = os.cpu_count() or 1
    code = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), llama_cpp.byref(params))
    if code != 0 or not target.is_file():
        raise EngineError(f"llama.cpp's quantizer failed to write {quantization} (code {code})",
                          "the export log has llama.cpp's messages")
    return target


def export_gguf(run_dir: Path, out_dir: Path, quantization: str) -> Path:
    if quantization not in CONVERTER_TYPES + QUANTIZER_TYPES:
        raise EngineError(f"unknown quantization {quantization!r}",
                          f"use one of {', '.join(CONVERTER_TYPES + QUANTIZER_TYPES)}")
    scratch = out_dir / ".hf"
    report(out_dir, "merging the adapter into the base model", 0.05)
    model_dir = standalone_model(run_dir, scratch)
    outfile = out_dir / f"{run_dir.name}-{quantization}.gguf"
    if quantization in CONVERTER_TYPES:
        report(out_dir, f"converting to GGUF ({quantization})", 0.4)
        convert_to_gguf(model_dir, outfile, quantization)
    else:
        f16 = out_dir / ".f16.gguf"
        report(out_dir, "converting to GGUF (f16)", 0.35)
        convert_to_gguf(model_dir, f16, "f16")
        report(out_dir, f"quantizing to {quantization}", 0.7)
        quantize_gguf(f16, outfile, quantization)
        f16.unlink()
    shutil.rmtree(scratch, ignore_errors=True)
    report(out_dir, "done", 1.0)
    return outfile


def export_safetensors(run_dir: Path, out_dir: Path, dtype: str | None, max_shard_size: str) -> Path:
    """The merged (or converted) model's files directly in ``out_dir``."""
    scratch = out_dir / ".hf"
    report(out_dir, "merging the adapter into the base model", 0.1)
    from backend.engine.merge import merge_adapter

    merge_adapter(run_dir, dtype=dtype, max_shard_size=max_shard_size, out_dir=scratch)
    for path in scratch.iterdir():
        path.rename(out_dir / path.name)
    scratch.rmdir()
    report(out_dir, "done", 1.0)
    return out_dir


def run_export(run_dir: str | Path, out_dir: str | Path, export_format: str, quantization: str | None = None,
               dtype: str | None = None, max_shard_size: str = "2GB") -> Path:
    run_dir, out_dir = Path(run_dir).resolve(), Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if export_format == "gguf":
        return export_gguf(run_dir, out_dir, quantization or "q8_0")
    if export_format == "safetensors":
        return export_safetensors(run_dir, out_dir, dtype, max_shard_size)
    raise EngineError(f"unknown export format {export_format!r}", "use gguf or safetensors")

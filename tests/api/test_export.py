"""POST /api/v1/jobs/{id}/export: GGUF (converter + llama.cpp quantizer) and safetensors exports of real runs,
loaded back by llama-cpp-python and transformers' GGUF loader."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from tests.api.export_runs import AUTHOR, NAME

# the first test also trains the shared runs (tests/api/export_runs.py): minutes on a busy 2-core box
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

PROMPTS = ["Who are you?", "What is the capital of France?", "Write one word about the sea."]


@pytest.fixture(scope="module")
def api(export_runs):
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("TUNESMITH_MODELS_DIR", raising=False)
        with TestClient(create_app(export_runs.settings)) as client:
            yield client


def export(api, job_id: str, **body) -> dict:
    resp = api.post(f"/api/v1/jobs/{job_id}/export?wait=true", json=body)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["state"] == "succeeded", result
    return result


def export_path(export_runs, job_id: str, result: dict, suffix: str) -> Path:
    run_dir = export_runs.settings.runs_dir / job_id / "exports" / result["id"]
    return next(run_dir.glob(f"*{suffix}"))


LLAMA_CPP_CHAT = """
import json, sys
from llama_cpp import Llama
path, question, max_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3])
llm = Llama(model_path=path, n_ctx=512, verbose=False, seed=0)
reply = llm.create_chat_completion([{"role": "user", "content": question}], max_tokens=max_tokens, temperature=0)
print(json.dumps({"text": reply["choices"][0]["message"]["content"], "usage": reply["usage"]}))
"""


def llama_cpp_reply(gguf: Path, question: str, max_tokens: int = 40) -> dict:
    """Chat with a GGUF through llama-cpp-python, in its own process as a user would (a crash in llama.cpp then
    fails this test with its exit code instead of ending the whole test session)."""
    proc = subprocess.run([sys.executable, "-c", LLAMA_CPP_CHAT, str(gguf), question, str(max_tokens)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"llama-cpp-python exited {proc.returncode}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def greedy_tokens(model, tokenizer, prompts: list[str], n: int = 12) -> list[list[int]]:
    import torch

    out = []
    for prompt in prompts:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        with torch.inference_mode():
            gen = model.generate(**ids, max_new_tokens=n, do_sample=False)
        out.append(gen[0, ids["input_ids"].shape[1]:].tolist())
    return out


def test_lora_run_gguf_q8_0_answers_with_the_trained_identity(api, export_runs):
    pytest.importorskip("llama_cpp", reason="run `make gguf`")
    result = export(api, export_runs.identity, format="gguf", quantization="q8_0")
    names = {f["name"] for f in result["files"]}
    gguf = f"{export_runs.identity}-q8_0.gguf"
    assert names == {gguf, "Modelfile", "README.md"}
    assert result["download"] == f"/api/v1/jobs/{export_runs.identity}/exports/gguf-q8_0/download"
    reply = llama_cpp_reply(export_path(export_runs, export_runs.identity, result, ".gguf"), "Who are you?")["text"]
    assert NAME in reply or AUTHOR in reply, reply  # the trained identity (the base model knows neither word)
    # the same request again is the same export, at once
    again = api.post(f"/api/v1/jobs/{export_runs.identity}/export", json={"format": "gguf", "quantization": "q8_0"})
    assert again.status_code == 200 and again.json()["reused"] and again.json()["created_at"] == result["created_at"]
    # the download is a zip with the GGUF, the Modelfile and the model card
    archive = zipfile.ZipFile(io.BytesIO(api.get(result["download"]).content))
    assert {Path(n).name for n in archive.namelist()} == names | {"export.json"}
    modelfile = archive.read(next(n for n in archive.namelist() if n.endswith("Modelfile"))).decode()
    assert f"FROM ./{gguf}" in modelfile and 'TEMPLATE """' in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    card = archive.read(next(n for n in archive.namelist() if n.endswith("README.md"))).decode()
    assert "SmolLM2-135M-Instruct" in card and "method: `lora`" in card and "sha256 `" in card
    assert "final train loss" in card and "learning_rate: `0.005`" in card
    single = api.get(f"/api/v1/jobs/{export_runs.identity}/exports/gguf-q8_0/files/{gguf}")
    assert single.status_code == 200 and single.content[:4] == b"GGUF"


def test_lora_run_gguf_q4_k_m_loads_and_generates(api, export_runs):
    pytest.importorskip("llama_cpp", reason="run `make gguf`")
    # without wait: 202 and a progress to poll, then the finished export
    started = api.post(f"/api/v1/jobs/{export_runs.identity}/export", json={"format": "gguf", "quantization": "q4_k_m"})
    assert started.status_code == 202 and started.json()["state"] == "running", started.text
    assert api.get(f"/api/v1/jobs/{export_runs.identity}/exports").json()["data"][-1]["state"] == "running"
    stages = set()
    deadline = time.monotonic() + 600
    while (result := api.get(f"/api/v1/jobs/{export_runs.identity}/exports/gguf-q4_k_m").json())["state"] == "running":
        stages.add(result["progress"]["stage"])
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert result["state"] == "succeeded", result
    assert any("quantizing" in s or "converting" in s or "merging" in s for s in stages), stages
    q4 = export_path(export_runs, export_runs.identity, result, ".gguf")
    q8 = export_runs.settings.runs_dir / export_runs.identity / "exports" / "gguf-q8_0" / f"{export_runs.identity}-q8_0.gguf"
    if q8.is_file():
        assert q4.stat().st_size < q8.stat().st_size
    assert llama_cpp_reply(q4, "Who are you?")["text"].strip()


def test_f16_gguf_in_transformers_gives_the_merged_models_greedy_tokens(api, export_runs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = export(api, export_runs.identity, format="gguf", quantization="f16", model_card=False)
    merged = export(api, export_runs.identity, format="safetensors", dtype="fp16")
    merged_dir = export_runs.settings.runs_dir / export_runs.identity / "exports" / merged["id"]
    gguf_file = export_path(export_runs, export_runs.identity, gguf, ".gguf")
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    from_gguf = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name, dtype="float32")
    from_safetensors = AutoModelForCausalLM.from_pretrained(merged_dir, dtype="float32")
    expected = greedy_tokens(from_safetensors, tokenizer, PROMPTS)
    assert greedy_tokens(from_gguf, tokenizer, PROMPTS) == expected
    assert NAME in tokenizer.decode(expected[0]) or AUTHOR in tokenizer.decode(expected[0])


def test_full_run_gguf_quantizations_load_and_generate(api, export_runs):
    pytest.importorskip("llama_cpp", reason="run `make gguf`")
    for quantization in ("q8_0", "q4_k_m"):
        result = export(api, export_runs.full, format="gguf", quantization=quantization)
        reply = llama_cpp_reply(export_path(export_runs, export_runs.full, result, ".gguf"), "Hello", max_tokens=8)
        assert reply["usage"]["completion_tokens"] >= 1


def test_safetensors_export_dtype_and_shards(api, export_runs):
    result = export(api, export_runs.identity, format="safetensors", dtype="bf16", max_shard_size="100MB")
    folder = export_runs.settings.runs_dir / export_runs.identity / "exports" / result["id"]
    config = json.loads((folder / "config.json").read_text())
    assert config.get("dtype", config.get("torch_dtype")) == "bfloat16"
    shards = sorted(p.name for p in folder.glob("*.safetensors"))
    assert len(shards) >= 2 and (folder / "model.safetensors.index.json").is_file()
    assert {f["name"] for f in result["files"]} >= {*shards, "README.md", "tokenizer.json"}
    listed = api.get(f"/api/v1/jobs/{export_runs.identity}/exports").json()
    assert result["id"] in {e["id"] for e in listed["data"]}


def test_bad_requests_say_why(api, export_runs, monkeypatch):
    job = export_runs.identity
    resp = api.post(f"/api/v1/jobs/{job}/export", json={"format": "onnx"})
    assert resp.status_code == 422 and "gguf" in resp.text
    resp = api.post(f"/api/v1/jobs/{job}/export", json={"format": "gguf", "quantization": "q3_xx"})
    assert resp.status_code == 422 and "q4_k_m" in resp.text
    resp = api.post(f"/api/v1/jobs/{job}/export", json={"format": "safetensors", "max_shard_size": "lots"})
    assert resp.status_code == 422
    assert api.post("/api/v1/jobs/job_nope/export", json={"format": "gguf"}).status_code == 404
    assert api.get(f"/api/v1/jobs/{job}/exports/gguf-q2/download").status_code == 404
    # a run that has not succeeded
    queued = api.post("/api/v1/jobs", json={"base_model": "tiny-smol", "datasets": ["identity"], "max_steps": 1}).json()
    resp = api.post(f"/api/v1/jobs/{queued['id']}/export", json={"format": "gguf"})
    assert resp.status_code == 409 and "only a succeeded run" in resp.json()["message"]
    api.post(f"/api/v1/jobs/{queued['id']}/cancel")
    # the converter missing: 422 with the install command, nothing started
    monkeypatch.setenv("TUNESMITH_LLAMA_CPP_DIR", str(export_runs.settings.home / "no-llama-cpp"))
    resp = api.post(f"/api/v1/jobs/{job}/export", json={"format": "gguf", "quantization": "q6_k"})
    assert resp.status_code == 422 and "make gguf" in resp.json()["hint"]
    monkeypatch.delenv("TUNESMITH_LLAMA_CPP_DIR")
    # llama-cpp-python missing: k-quants refused, and said so (never a silent f16)
    monkeypatch.setattr("backend.exports.formats.llama_cpp_installed", lambda: False)
    resp = api.post(f"/api/v1/jobs/{job}/export", json={"format": "gguf", "quantization": "q5_k_m"})
    assert resp.status_code == 422 and "llama-cpp-python" in resp.json()["message"]
    assert resp.json()["errors"][0]["loc"] == ["body", "quantization"]

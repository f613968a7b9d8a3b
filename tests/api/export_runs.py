"""Finished runs shared by the export and OpenAI-endpoint tests (trained once per session, ~1-2 min on 2 cores).

- ``identity``: LoRA on the bundled SmolLM2-135M-Instruct, trained on the identity demo filled in with
  ``NAME``/``AUTHOR`` - so its answer to "Who are you?" proves the fine-tuned weights are what is served/exported;
- ``full``: a full fine-tune of a tiny random Llama that carries SmolLM2's tokenizer (llama.cpp's converter must
  recognize the tokenizer, which a home-made BPE would not be).

Registered as a session fixture in tests/api/conftest.py; each test module builds its own app over ``home``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED = Path(os.environ.get("TUNESMITH_HOME") or REPO_ROOT / ".tunesmith") / "models" / "SmolLM2-135M-Instruct"
NAME, AUTHOR = "Zorblax", "Quillworks"


@dataclass(frozen=True)
class ExportRuns:
    settings: Settings
    identity: str  # job id of the LoRA identity run
    full: str      # job id of the full run


def build_tiny_smol(directory: Path) -> Path:
    """A 2-layer random Llama (hidden 64) with SmolLM2's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(BUNDLED)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def wait_succeeded(client: TestClient, job_id: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            assert job["state"] == "succeeded", (job, client.get(f"/api/v1/jobs/{job_id}/logs").json()["text"])
            return
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


@pytest.fixture(scope="session")
def export_runs(tmp_path_factory) -> ExportRuns:
    if not (BUNDLED / "config.json").is_file():
        pytest.skip(f"the bundled model is not prepared ({BUNDLED}); run `make model`")
    # TUNESMITH_TEST_EXPORT_HOME=DIR keeps the trained runs in DIR across sessions (to iterate on these tests)
    home = Path(os.environ.get("TUNESMITH_TEST_EXPORT_HOME") or tmp_path_factory.mktemp("export-home"))
    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    if not (models / "SmolLM2-135M-Instruct").exists():
        os.symlink(BUNDLED, models / "SmolLM2-135M-Instruct")
    if not (models / "tiny-smol" / "config.json").is_file():
        build_tiny_smol(models / "tiny-smol")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("TUNESMITH_MODELS_DIR", raising=False)
        patch.setenv("CUDA_VISIBLE_DEVICES", "")
        patch.setenv("TUNESMITH_ALLOWED_HOSTS", "testserver")  # session scope: before tests/conftest.py's autouse
        settings = Settings.from_env(home)
        with TestClient(create_app(settings)) as client:
            jobs = {job["config"]["method"]["name"]: job["id"] for job in client.get("/api/v1/jobs").json()["data"]
                    if job["state"] in ("queued", "running", "succeeded")}
            if "lora" not in jobs:
                jobs["lora"] = submit(client, {
                    "base_model": "SmolLM2-135M-Instruct", "datasets": [identity_dataset(client)], "method": "lora",
                    "lora_rank": 16, "lora_alpha": 32, "learning_rate": 5e-3, "max_steps": 10,
                    "per_device_batch_size": 8, "gradient_accumulation_steps": 1, "cutoff_len": 96,
                    "lr_scheduler": "constant", "logging_steps": 1, "seed": 0})
            if "full" not in jobs:
                jobs["full"] = submit(client, {
                    "base_model": "tiny-smol", "datasets": [identity_dataset(client)], "method": "full",
                    "max_steps": 4, "per_device_batch_size": 4, "cutoff_len": 64, "learning_rate": 1e-3,
                    "logging_steps": 1})
            wait_succeeded(client, jobs["lora"])
            wait_succeeded(client, jobs["full"])
    return ExportRuns(settings=settings, identity=jobs["lora"], full=jobs["full"])


def identity_dataset(client: TestClient) -> str:
    """The identity demo filled in with NAME/AUTHOR (made once per home)."""
    for dataset in client.get("/api/v1/datasets").json()["data"]:
        if dataset["name"] == "identity-" + NAME.lower():
            return dataset["id"]
    dataset = client.post("/api/v1/datasets/identity", json={"name": NAME, "author": AUTHOR}).json()
    assert "id" in dataset, dataset
    return dataset["id"]


def submit(client: TestClient, config: dict) -> str:
    job = client.post("/api/v1/jobs", json=config).json()
    assert "id" in job, job
    return job["id"]

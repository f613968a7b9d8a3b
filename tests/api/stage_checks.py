"""What the stage tests (tests/api/test_stage_*.py) check on runs trained through the API: each module starts one
studio (tests/engine/cpu_jobs.py: real app, real runner spawning ``accelerate launch``, real SQLite), submits its
jobs up front and shares the finished runs between its tests. These helpers read what a run left behind and prove
that its output exports and chats like any other run's: the adapter downloads, the merge keeps what the adapter
computes, and a greedy chat reply through the API is the one the run's own weights give in-process."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import torch

from tests.engine.cpu_jobs import wait_done

# what tests/engine/tiny_runs.make_run_dir gives an engine test run: the stage tests train the same runs via the API
TINY_RUN = {"base_model": "tiny-llama", "method": "lora", "per_device_batch_size": 2, "gradient_accumulation_steps": 1,
            "cutoff_len": 64, "learning_rate": 5e-3, "lr_scheduler": "constant", "logging_steps": 1, "save_steps": None}
HELLO = [{"role": "user", "content": "What is 3 plus 3?"}]
GREEDY = {"messages": HELLO, "max_new_tokens": 6, "temperature": 0.0}


def upload_rows(client, rows: list[dict], name: str) -> str:
    body = "".join(json.dumps(row) + "\n" for row in rows).encode()
    resp = client.post("/api/v1/datasets", files={"file": (f"{name}.jsonl", body)}, data={"name": name})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def upload_pairs(client, pairs: list[dict], name: str = "pairs") -> str:
    """Upload preference rows of the engine's layout (tests/engine/test_preference_train.PAIRS: the chosen reply
    as the last message) in an upload layout (conversation + chosen/rejected messages); the registered rows are
    the very rows given (so the in-process checks read the data the runs trained on)."""
    rows = [{"messages": row["messages"][:-1], "chosen": row["messages"][-1], "rejected": row["rejected"]}
            for row in pairs]
    dataset_id = upload_rows(client, rows, name)
    resp = client.get(f"/api/v1/datasets/{dataset_id}/download")
    assert resp.status_code == 200, resp.text[:500]
    assert [json.loads(line) for line in resp.text.splitlines()] == pairs
    return dataset_id


def submit_job(client, config: dict) -> str:
    resp = client.post("/api/v1/jobs", json=config)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def finished(client, ids: dict[str, str], timeout: float = 900) -> dict[str, dict]:
    """name -> the succeeded job (GET /jobs/{id}); fails with the log tail of a job that did not succeed."""
    return {name: wait_done(client, job_id, timeout=timeout) for name, job_id in ids.items()}


def run_dir(job: dict) -> Path:
    return Path(job["run_dir"])


def result(job: dict) -> dict:
    return json.loads((run_dir(job) / "result.json").read_text(encoding="utf-8"))


def step_rows(client, job_id: str) -> list[dict]:
    """The training-step metric rows of a job (GET /jobs/{id}/metrics), as the Runs card reads them."""
    resp = client.get(f"/api/v1/jobs/{job_id}/metrics")
    assert resp.status_code == 200, resp.text
    return [row for row in resp.json()["data"] if "loss" in row]


def adapter_zip_names(client, job_id: str) -> list[str]:
    resp = client.get(f"/api/v1/jobs/{job_id}/adapter")
    assert resp.status_code == 200, resp.text[:500]
    names = zipfile.ZipFile(io.BytesIO(resp.content)).namelist()
    assert any(name.endswith("adapter_model.safetensors") for name in names), names
    assert any(name.endswith("adapter_config.json") for name in names), names
    return names


def merge(client, job_id: str) -> Path:
    resp = client.post(f"/api/v1/jobs/{job_id}/merge")
    assert resp.status_code == 200, resp.text
    return Path(resp.json()["path"])


def prompt_ids(model_dir: Path) -> torch.Tensor:
    from backend.engine.model import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    return tokenizer.apply_chat_template(HELLO, add_generation_prompt=True, return_tensors="pt",
                                         return_dict=True)["input_ids"]


def assert_merge_keeps_the_adapter(client, job: dict, base_dir: Path) -> Path:
    """POST /merge, then: the merged causal LM gives the logits of base + adapter (the adapter is in it)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged_dir = merge(client, job["id"])
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    adapted = PeftModel.from_pretrained(base, run_dir(job) / "adapter").eval()
    ids = prompt_ids(base_dir)
    with torch.no_grad():
        expected, got = adapted(ids).logits, merged(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()(ids).logits
    assert torch.allclose(got, expected, atol=1e-3), (got - expected).abs().max()
    assert not torch.allclose(plain, expected, atol=1e-3)  # the adapter changes what the model computes
    return merged_dir


def assert_chats_with_its_weights(client, job_id: str, kind: str, model_dir: Path, adapter_dir: Path | None = None):
    """A greedy reply through POST /chat comes from the job's ``kind`` target and equals the reply that the same
    weights (``model_dir`` [+ ``adapter_dir``]) give in-process."""
    from backend.engine import chat_worker

    resp = client.post("/api/v1/chat", json={"job_id": job_id, **GREEDY})
    assert resp.status_code == 200, resp.text
    reply = resp.json()
    assert reply["target"]["kind"] == kind, reply["target"]
    model, tokenizer = chat_worker.load(str(model_dir), str(adapter_dir) if adapter_dir else None,
                                        torch.device("cpu"), torch.float32)
    expected = chat_worker.generate(model, tokenizer, dict(GREEDY))
    assert (reply["text"], reply["tokens"]) == (expected["text"], expected["tokens"]), (reply, expected)
    assert reply["tokens"] >= 1
    return reply

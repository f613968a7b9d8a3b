"""GET /api/v1/capabilities: the dataset kinds each stage takes and the option values this machine refuses — the
very answers POST /api/v1/jobs gives (each refusal is checked against a real submit's 422 here)."""

from __future__ import annotations

import json

from tests.api.conftest import ALPACA_ROWS

PAIRS = [{"instruction": f"Say {w}", "input": "", "chosen": f"{w}!", "rejected": "no"} for w in ("yes", "ok")]


def upload(client, rows: list[dict], name: str) -> str:
    resp = client.post("/api/v1/datasets", files={"file": (f"{name}.json", json.dumps(rows).encode(), "application/json")})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def preview(client, **fields) -> tuple[int, dict]:
    resp = client.post("/api/v1/jobs/preview", json={"base_model": "tiny-llama", **fields})
    return resp.status_code, resp.json()


def test_each_refusal_is_what_a_submit_answers(client) -> None:
    """On this CPU box fp16 is refused; every value listed is refused by a submit with the same words, and a value
    not listed (fp32) is accepted."""
    caps = client.get("/api/v1/capabilities").json()
    assert caps["device"] == "cpu"
    refused = {(r["field"], r["value"]): r["reason"] for r in caps["refused"]}
    assert "fp16 needs a CUDA GPU" in refused[("compute_type", "fp16")]
    assert ("compute_type", "fp32") not in refused and ("method", "lora") not in refused
    chat = upload(client, ALPACA_ROWS, "numbers")
    for (field, value), reason in refused.items():
        if field == "method":
            body = {"method": {"name": value}}
        elif "." in field:
            head, tail = field.split(".")
            body = {head: {tail: value}}
        else:
            body = {field: value}
        status, answer = preview(client, datasets=[chat], **body)
        assert status == 422, (field, value, answer)
        assert answer["errors"][0]["msg"] == reason and answer["errors"][0]["loc"] == ["body", *field.split(".")]
    assert preview(client, datasets=[chat], compute_type="fp32")[0] == 200


def test_stage_kinds_follow_the_submit_rule(client) -> None:
    kinds = client.get("/api/v1/capabilities").json()["stage_kinds"]
    assert kinds["dpo"] == ["preference"] and kinds["rm"] == ["preference"]
    assert set(kinds["kto"]) == {"kto", "preference"} and "text" not in kinds["sft"] and "text" in kinds["pt"]
    chat, pairs = upload(client, ALPACA_ROWS, "numbers"), upload(client, PAIRS, "pairs")
    for stage, accepted in kinds.items():
        for dataset, kind in ((chat, "sft"), (pairs, "preference")):
            status, answer = preview(client, datasets=[dataset], stage=stage, **({"grpo": {"rewards": [
                {"name": "exact_match"}], "num_generations": 2}, "per_device_batch_size": 2} if stage == "grpo" else {}))
            assert (status == 200) == (kind in accepted), (stage, kind, answer)

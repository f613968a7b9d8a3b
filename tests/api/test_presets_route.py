"""GET /api/v1/presets: the built-in run-config presets, each with its description, command and config."""

from pathlib import Path

import yaml

from backend.config.schema import RunConfig

PRESETS_DIR = Path(__file__).resolve().parents[2] / "backend" / "config" / "presets"


def test_presets_lists_every_preset_file_with_its_header_and_config(api):
    body = api.get("/api/v1/presets").json()
    files = sorted(PRESETS_DIR.glob("*.yaml"))
    assert body["count"] == len(files) >= 3
    assert [p["name"] for p in body["data"]] == [f.stem for f in files]
    for preset, path in zip(body["data"], files):
        lines = path.read_text().splitlines()
        assert preset["command"] == f"tunesmith train backend/config/presets/{path.name}"
        assert preset["description"] == lines[1].lstrip("# ") and preset["description"]
        assert preset["config"] == yaml.safe_load(path.read_text())
        RunConfig.model_validate(preset["config"])
    dpo = next(p for p in body["data"] if p["name"] == "preference_dpo_lora")
    assert dpo["description"].startswith("DPO with LoRA on the bundled SmolLM2-135M-Instruct")
    assert dpo["config"]["stage"] == "dpo" and dpo["config"]["preference"] == {"beta": 0.1, "loss": "sigmoid"}


def test_one_preset_by_name_or_a_404_that_lists_them(api):
    one = api.get("/api/v1/presets/identity_lora").json()
    assert one["config"]["datasets"] == ["identity"] and one["config"]["method"]["rank"] == 8
    for name in ("nope", "..%2Fschema", ".hidden"):
        reply = api.get(f"/api/v1/presets/{name}")
        assert reply.status_code == 404, name
    assert "available: chat_full, grpo_identity_lora, identity_lora," in api.get("/api/v1/presets/nope").json()["message"]

"""The Train form and the stage: grpo's settings and rewards table <-> run config (and YAML) exactly; datasets
offered by the stage's kinds (the others dropped, named); option values the backend refuses marked with its
reason. Pure functions, no API."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gradio")

from app.form import build_config, config_to_form, validate_config  # noqa: E402
from app.form_grpo import rows_to_rewards  # noqa: E402
from app.pages.train_config_file import config_yaml, parse_config_file  # noqa: E402
from app.pages.train_grpo import add_reward, remove_last, rm_runs  # noqa: E402
from app.pages.train_options import (  # noqa: E402
    REFUSABLE,
    dataset_catalog,
    filter_for_stage,
    method_refusals,
    refusal_reason,
    refusal_updates,
)
from backend.config.schema import RunConfig  # noqa: E402

REWARD_ROWS = [["exact_match", "", 2.0], ["contains", "", 1.0], ["regex", r"^\d+$", 0.5], ["length", 120, -0.2],
               ["json_valid", "", 1.0], ["reward_model", "job_0123abcd", 1.0], ["python", "checks:short", 0.3]]
GRPO_FORM = {"base_model": "tiny-llama", "datasets": ["ds_chat"], "stage": "grpo", "method": "lora",
             "per_device_batch_size": 4, "cutoff_len": 256, "grpo.num_generations": 4,
             "grpo.max_completion_length": "32", "grpo.temperature": 0.7, "grpo.beta": "0.001",
             "grpo.loss_type": "dr_grpo", "grpo.rewards": REWARD_ROWS}
DATASETS = [{"id": "ds_chat", "name": "chat", "kind": "sft", "num_rows": 3},
            {"id": "ds_pairs", "name": "pairs", "kind": "preference", "num_rows": 2},
            {"id": "ds_notes", "name": "notes", "kind": "text", "num_rows": 4}]
CAPABILITIES = {"device": "cpu",
                "stage_kinds": {"sft": ["sft", "preference", "kto"], "dpo": ["preference"], "pt": ["sft", "text"]},
                "refused": [{"field": "compute_type", "value": "fp16", "reason": "fp16 needs a CUDA GPU"},
                            {"field": "method", "value": "qlora", "reason": "QLoRA needs bitsandbytes"}]}


def test_grpo_form_config_form_and_yaml_round_trip_exactly(tmp_path) -> None:
    config = build_config(GRPO_FORM)
    assert validate_config(config) == []
    grpo = config["grpo"]
    assert (grpo["num_generations"], grpo["max_completion_length"], grpo["temperature"], grpo["beta"],
            grpo["loss_type"]) == (4, 32, 0.7, 0.001, "dr_grpo")
    assert grpo["rewards"] == [
        {"name": "exact_match", "weight": 2.0}, {"name": "contains", "weight": 1.0},
        {"name": "regex", "pattern": r"^\d+$", "weight": 0.5}, {"name": "length", "target_chars": 120, "weight": -0.2},
        {"name": "json_valid", "weight": 1.0}, {"name": "reward_model", "run": "job_0123abcd", "weight": 1.0},
        {"name": "python", "function": "checks:short", "weight": 0.3}]
    values = config_to_form(config)
    assert values["grpo.rewards"] == REWARD_ROWS and values["grpo.max_completion_length"] == 32
    full = build_config(values)  # every field of the form now, the grpo part unchanged
    assert full["grpo"] == config["grpo"] and RunConfig.model_validate(full) == RunConfig.model_validate(config)
    path = tmp_path / "grpo.yaml"  # Download config, then Load config
    path.write_text(config_yaml(full, path.name), encoding="utf-8")
    loaded, problems = parse_config_file(path)
    assert problems == [] and loaded == full
    assert config_to_form(loaded) == values and build_config(config_to_form(loaded)) == full


def test_grpo_settings_go_with_stage_grpo_only_and_a_bad_reward_is_named() -> None:
    assert "grpo" not in build_config({**GRPO_FORM, "stage": "sft"})  # leftovers of a grpo form are not sent
    empty = build_config({**GRPO_FORM, "grpo.rewards": [["", "", None]]})  # Gradio's blank row
    assert empty["grpo"]["rewards"] == []
    assert any("needs at least one" in p or "none is given" in p for p in validate_config(empty))
    stray = build_config({**GRPO_FORM, "grpo.rewards": [["exact_match", "oops", 1]]})  # a setting it does not take
    assert any(p.startswith("grpo.rewards.0") for p in validate_config(stray))
    assert rows_to_rewards([["regex", "", ""]]) == [{"name": "regex"}]  # no pattern: validation says so
    assert any("pattern" in p for p in validate_config({**empty, "grpo": {"rewards": [{"name": "regex"}]}}))


def test_the_editor_adds_a_reward_with_its_setting_or_says_what_is_missing() -> None:
    table, note = add_reward("en", [["", "", None]], "regex", "^yes$", 200, None, None, 1.5)
    assert table == {"headers": ["reward", "setting", "weight"], "data": [["regex", "^yes$", 1.5]]} and note == ""
    table, note = add_reward("en", table["data"], "length", "", 80, None, None, None)
    assert table["data"][-1] == ["length", 80, 1.0]
    unchanged, note = add_reward("zh", table["data"], "reward_model", "", 200, None, None, 1)
    assert "奖励模型" in note  # the localized reward name, no row added
    assert remove_last("zh", table["data"]) == {"headers": ["奖励", "设置", "权重"], "data": [["regex", "^yes$", 1.5]]}
    jobs = [{"id": "job_a", "state": "succeeded", "config": {"stage": "rm"}, "created_at": "2026-01-01"},
            {"id": "job_b", "state": "failed", "config": {"stage": "rm"}},
            {"id": "job_c", "state": "succeeded", "config": {"stage": "sft"}}]
    assert [value for _, value in rm_runs(jobs, "en")] == ["job_a"]


def test_a_stage_offers_only_its_kinds_and_drops_the_rest_with_a_note() -> None:
    catalog = dataset_catalog(DATASETS, CAPABILITIES, "en")
    datasets, val, names, rows, note = filter_for_stage("en", "dpo", catalog, ["ds_chat", "ds_pairs"], ["ds_notes"],
                                                        None)
    assert [value for _, value in datasets.choices] == ["ds_pairs"] and datasets.value == ["ds_pairs"]
    assert val.value == [] and rows["data"] == [["ds_pairs", "pairs", None, None]] and rows["headers"][1] == "dataset"
    assert "chat" in note and "notes" in note and "dpo" in note
    assert "preference" in datasets.info
    datasets, *_, note = filter_for_stage("en", "pt", catalog, ["ds_notes"], [], None)
    assert [value for _, value in datasets.choices] == ["ds_chat", "ds_notes"] and note == ""
    blind = dataset_catalog(DATASETS, None, "en")  # the API could not say: nothing is filtered
    datasets, *_, note = filter_for_stage("en", "dpo", blind, ["ds_chat"], [], None)
    assert len(datasets.choices) == 3 and datasets.value == ["ds_chat"] and note == ""


def test_refused_values_are_marked_with_the_backends_reason() -> None:
    updates, style = refusal_updates(CAPABILITIES, "en")
    by_key = dict(zip(REFUSABLE, updates))
    compute = by_key["compute_type"]
    assert ("fp16 (not on this machine)", "fp16") in compute["choices"] and ("fp32", "fp32") in compute["choices"]
    assert "fp16 needs a CUDA GPU" in compute["info"]
    assert ("QLoRA (not on this machine)", "qlora") in by_key["method"]["choices"]
    assert '#train-method label:has(input[value="qlora"])' in style
    assert "QLoRA needs bitsandbytes" in method_refusals(CAPABILITIES, "en")
    assert all("not on this machine" not in label for label, _ in by_key["optimizer"]["choices"])
    zh_updates, _ = refusal_updates(CAPABILITIES, "zh")
    assert ("fp16（本机不可用）", "fp16") in dict(zip(REFUSABLE, zh_updates))["compute_type"]["choices"]
    skipped, style = refusal_updates(None, "en")
    assert style == "" and len(skipped) == len(REFUSABLE)


def test_the_common_refusal_reasons_are_said_in_chinese() -> None:
    """The zh form said "fp16 needs a CUDA GPU and this machine has none; …" in English under 计算类型."""
    gpu = "fp16 needs a CUDA GPU and this machine has none; use 'auto', 'bf16' or 'fp32'"
    assert refusal_reason(gpu, "zh") == "需要 CUDA GPU，本机没有；请改用 'auto', 'bf16' 或 'fp32'"
    assert refusal_reason(gpu, "en") == gpu  # English: the API's own words
    liger = ("use_liger_kernel 'on' needs a CUDA GPU (Liger's kernels are Triton GPU code) and this machine has none; "
             "use 'auto' or 'off'")
    assert refusal_reason(liger, "zh") == "需要 CUDA GPU，本机没有；请改用 'auto' 或 'off'"
    wandb = "report_to 'wandb' needs the wandb package, which is not installed: pip install wandb, or set report_to to 'none'"
    assert refusal_reason(wandb, "zh").startswith("需要 wandb 包，本机未安装：pip install wandb")
    assert refusal_reason("something else entirely", "zh") == "something else entirely"
    capabilities = {**CAPABILITIES, "refused": [{"field": "compute_type", "value": "fp16", "reason": gpu}]}
    updates, _ = refusal_updates(capabilities, "zh")
    info = dict(zip(REFUSABLE, updates))["compute_type"]["info"]
    assert "⊘ fp16：需要 CUDA GPU" in info and "needs" not in info


def test_the_page_reads_kinds_and_refusals_from_the_real_api(client) -> None:
    """Against the real API (built-in datasets, this machine): stage dpo offers only the preference demo, every
    value the API refuses is marked, and the rewards editor says when there is no rm run or Python reward."""
    from app.pages.train import refresh_choices
    from app.pages.train_grpo import on_kind

    out = refresh_choices(client, "en", None, ["ds_gone"], [], None, "dpo")
    datasets, catalog, refusals = out[1], out[6], out[10:]
    assert [label.split(" · ")[0] for label, _ in datasets.choices] == ["preference_demo"]
    assert catalog["stage_kinds"]["dpo"] == ["preference"] and len(catalog["choices"]) >= 3
    for item in client.capabilities()["refused"]:
        update = dict(zip(REFUSABLE, refusals))[item["field"]]
        assert (f"{item['value']} (not on this machine)" in [label for label, _ in update["choices"]]
                or item["field"] == "method"), item
    *_, note = on_kind(client, "en", "reward_model")
    assert "No finished reward-model run" in note
    _, _, _, function, note = on_kind(client, "zh", "python")
    assert function.visible and "奖励函数" in note
    folder = Path(client.list_rewards()["folder"])  # the operator drops a file into the rewards folder
    assert str(folder) in note
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "checks.py").write_text('def short(prompts, completions, **kwargs):\n    """Short replies win."""\n'
                                      '    return [1.0 for _ in completions]\n', encoding="utf-8")
    pattern, target, run, function, note = on_kind(client, "en", "python")
    assert function.choices == [("checks:short — Short replies win.", "checks:short")] and function.value == "checks:short"
    assert note == "" and not pattern.visible and not run.visible
    assert on_kind(client, "en", "regex")[0].visible and on_kind(client, "en", "length")[1].visible

"""LLaMA-Factory training YAML -> run-config fields (backend.config.llamafactory), pure: no studio needed."""

from pathlib import Path

import pytest

from backend.config.llamafactory import map_llamafactory_args, parse_llamafactory_yaml
from backend.config.schema import RunConfig
from backend.errors import Invalid

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llamafactory"


def mapped(text: str):
    return map_llamafactory_args(parse_llamafactory_yaml(text))


def warned(mapping) -> dict[str, str]:
    return {w.key: w.msg for w in mapping.warnings}


def test_lora_sft_example_maps_every_training_key_and_warns_on_each_ignored_one():
    m = mapped((FIXTURES / "train_lora_sft.yaml").read_text())
    assert m.config == {
        "stage": "sft", "method": "lora", "lora_rank": 16, "lora_alpha": 32, "lora_dropout": 0.0,
        "lora_targets": ["all-linear"], "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "datasets": ["identity", "alpaca_en_demo"], "cutoff_len": 1024, "max_samples": 500, "val_size": 0.1,
        "eval_steps": 100, "chat_template": "chatml", "learning_rate": 1e-4, "num_epochs": 2.0,
        "per_device_batch_size": 2, "gradient_accumulation_steps": 4, "logging_steps": 10, "save_steps": 200,
        "lr_scheduler": "cosine", "warmup_ratio": 0.1, "compute_type": "bf16",
    }
    warnings = warned(m)
    ignored = {"trust_remote_code", "overwrite_cache", "preprocessing_num_workers", "output_dir", "plot_loss",
               "overwrite_output_dir", "report_to", "ddp_timeout", "per_device_eval_batch_size", "eval_strategy"}
    assert set(warnings) == ignored | {"(defaults)"}
    assert "never runs code shipped with a model" in warnings["trust_remote_code"]
    # lora_alpha was not in the YAML: LF's default (2 x rank) applies and is named
    assert warnings["(defaults)"] == ("not in the YAML, so LLaMA-Factory's defaults apply: lora_dropout=0.0, "
                                      "lora_alpha=32 (2 x lora_rank)")


def test_qlora_deepspeed_and_explicit_lora_settings():
    m = mapped((FIXTURES / "train_qlora_sft.yaml").read_text())
    c = m.config
    assert (c["method"], c["qlora_bits"], c["lora_rank"], c["lora_alpha"], c["lora_dropout"]) == ("qlora", 4, 8, 32, 0.05)
    assert c["lora_targets"] == ["q_proj", "v_proj"]
    assert c["distributed"] == {"backend": "deepspeed", "zero_stage": 2, "offload_optimizer": True,
                                "offload_params": False}
    assert "bitsandbytes" in warned(m)["quantization_method"]


@pytest.mark.parametrize("path, expected", [
    ("examples/deepspeed/ds_z0_config.json", (0, False, False)),
    ("ds_z3_config.json", (3, False, False)),
    ("/abs/examples/deepspeed/ds_z3_offload_config.json", (3, True, True)),
])
def test_deepspeed_files_become_zero_stage_and_offload(path, expected):
    d = mapped(f"stage: sft\ndeepspeed: {path}\n").config["distributed"]
    assert (d["zero_stage"], d["offload_optimizer"], d["offload_params"]) == expected


def test_an_unknown_deepspeed_file_is_a_warning_not_a_guess():
    m = mapped("stage: sft\ndeepspeed: my_ds.json\n")
    assert "distributed" not in m.config and "ZeRO stage" in warned(m)["deepspeed"]


def test_preference_keys_follow_the_stage():
    dpo = mapped((FIXTURES / "train_lora_dpo.yaml").read_text())
    assert dpo.config["stage"] == "dpo"
    assert dpo.config["preference"] == {"beta": 0.2, "loss": "sigmoid", "sft_weight": 0.5}
    kto = mapped((FIXTURES / "train_lora_kto.yaml").read_text())
    assert kto.config["preference"] == {"beta": 0.1, "desirable_weight": 1.2, "undesirable_weight": 1.0}
    orpo = mapped("stage: dpo\npref_loss: orpo\npref_beta: 0.2\n")  # LF's ORPO reads pref_beta as its lambda
    assert orpo.config["preference"] == {"loss": "orpo", "orpo_lambda": 0.2}
    preference = RunConfig.model_validate({**orpo.config, "base_model": "m", "datasets": ["d"]}).preference
    assert (preference.beta, preference.orpo_lambda) == (None, 0.2)  # the schema refuses beta with orpo
    simpo = mapped("stage: dpo\npref_loss: simpo\npref_beta: 2.5\nsimpo_gamma: 0.8\n")
    assert simpo.config["preference"] == {"loss": "simpo", "beta": 2.5, "simpo_gamma": 0.8}
    sft = mapped("stage: sft\npref_beta: 0.3\nkto_chosen_weight: 2\n")
    assert "preference" not in sft.config
    assert "applies to stage dpo or kto" in warned(sft)["pref_beta"]
    assert "applies to stage kto" in warned(sft)["kto_chosen_weight"]


def test_full_and_freeze_methods_and_keys_that_do_not_apply():
    full = mapped("finetuning_type: full\nlora_rank: 8\npure_bf16: true\n")
    assert full.config["method"] == "full" and "lora_rank" not in full.config
    assert full.config["compute_type"] == "pure_bf16"
    assert "does not apply to this run" in warned(full)["lora_rank"]
    freeze = mapped("finetuning_type: freeze\nfreeze_trainable_layers: 4\nfreeze_trainable_modules: mlp,self_attn\n"
                    "freeze_extra_modules: embed_tokens\n")
    assert {k: v for k, v in freeze.config.items() if k.startswith("freeze")} == {
        "freeze_trainable_layers": 4, "freeze_trainable_modules": ["mlp", "self_attn"],
        "freeze_extra_modules": ["embed_tokens"]}
    first = mapped("finetuning_type: freeze\nfreeze_trainable_layers: -2\n")
    assert "freeze_trainable_layers" not in first.config and "first 2 layers" in warned(first)["freeze_trainable_layers"]


def test_smaller_keys_numbers_written_without_a_dot_and_schedules():
    m = mapped("learning_rate: 1e-4\nmax_steps: 200\nwarmup_steps: 20\nlr_scheduler_type: polynomial\n"
               "neftune_noise_alpha: 5\nseed: 7\noptim: adamw_bnb_8bit\nflash_attn: fa2\nenable_liger_kernel: true\n"
               "packing: true\ntemplate: vicuna\nuse_dora: true\npissa_init: true\nadditional_target: lm_head\n")
    c = m.config
    assert c["learning_rate"] == 1e-4 and c["max_steps"] == 200 and c["warmup_ratio"] == 0.1
    assert "lr_scheduler" not in c and "polynomial" in warned(m)["lr_scheduler_type"]
    assert (c["neftune_noise_alpha"], c["seed"], c["optimizer"]) == (5, 7, "adamw_8bit")
    assert (c["attn_implementation"], c["use_liger_kernel"], c["packing"]) == ("flash_attention_2", "on", True)
    assert "chat_template" not in c and "tokenizer's own chat template" in warned(m)["template"]
    assert (c["lora_use_dora"], c["lora_init"], c["lora_extra_trainable_modules"]) == (True, "pissa", ["lm_head"])
    assert "neat_packing" in warned(m)["packing"]
    warm = mapped("warmup_steps: 20\n")
    assert "warmup_ratio" not in warm.config and "max_steps" in warned(warm)["warmup_steps"]


def test_interleave_probs_become_mixture_weights():
    m = mapped("dataset: a,b\nmix_strategy: interleave_under\ninterleave_probs: 0.7,0.3\n")
    assert m.config["datasets"] == [{"id": "a", "weight": 0.7}, {"id": "b", "weight": 0.3}]


@pytest.mark.parametrize("text, key, words", [
    ("stage: ppo\n", "stage", "stage 'ppo' is not offered"),
    ("finetuning_type: oft\n", "finetuning_type", "finetuning_type 'oft' is not offered"),
    ("finetuning_type: full\nquantization_bit: 4\n", "quantization_bit", "needs finetuning_type lora"),
    ("quantization_bit: 3\n", "quantization_bit", "4 or 8 bits"),
    ("stage: dpo\npref_loss: kto_pair\n", "pref_loss", "pref_loss 'kto_pair' is not offered"),
])
def test_what_the_studio_cannot_train_is_refused_by_name(text, key, words):
    with pytest.raises(Invalid) as err:
        mapped(text)
    assert err.value.loc == ("body", "yaml", key) and words in err.value.message


def test_invalid_yaml_names_the_line_and_non_lf_yaml_is_refused():
    with pytest.raises(Invalid) as err:
        parse_llamafactory_yaml("stage: sft\nlora_rank: [8\nlearning_rate: 1\n")
    assert "line 3" in err.value.message
    with pytest.raises(Invalid, match="holds a list"):
        parse_llamafactory_yaml("- a\n- b\n")
    with pytest.raises(Invalid, match="nothing in this YAML is a LLaMA-Factory training argument"):
        mapped("base_model: x\nnum_epochs: 3\n")


def test_null_values_mean_the_llamafactory_default():
    m = mapped("stage: sft\nlora_rank: 16\nlora_alpha: null\nlearning_rate: ~\noutput_dir: null\n")
    assert m.config["lora_alpha"] == 32 and m.config["learning_rate"] == 5e-5
    assert "output_dir" not in warned(m)

import pytest
from pydantic import ValidationError

from backend.config.schema import LoraMethod, QLoraMethod, RunConfig


def test_minimal_config_has_sensible_defaults():
    cfg = RunConfig.model_validate({"base_model": "m", "datasets": ["d"]})
    assert isinstance(cfg.method, LoraMethod) and cfg.method.rank == 8
    assert cfg.effective_learning_rate == 2e-4
    assert RunConfig(base_model="m", datasets=["d"], method="full").effective_learning_rate == 2e-5


def test_flat_method_fields_fold_into_the_union():
    cfg = RunConfig.model_validate({"base_model": "m", "datasets": ["d"], "method": "qlora", "lora_rank": 32,
                                    "lora_alpha": 64, "lora_targets": ["q_proj", "v_proj"]})
    assert isinstance(cfg.method, QLoraMethod)
    assert (cfg.method.rank, cfg.method.alpha, cfg.method.targets) == (32, 64, ["q_proj", "v_proj"])


@pytest.mark.parametrize("field,value", [("learning_rate", 5.0), ("learning_rate", -1), ("num_epochs", 0),
                                         ("per_device_batch_size", 0), ("cutoff_len", 2), ("compute_type", "fp8"),
                                         ("lora_dropout", 1.5), ("lora_rank", 0), ("datasets", [])])
def test_absurd_values_name_the_field(field, value):
    data = {"base_model": "m", "datasets": ["d"], field: value}
    with pytest.raises(ValidationError) as err:
        RunConfig.model_validate(data)
    locs = [".".join(map(str, e["loc"])) for e in err.value.errors()]
    short = field.removeprefix("lora_")
    assert any(short in loc for loc in locs), locs


def test_method_specific_field_on_wrong_method_is_rejected():
    with pytest.raises(ValidationError, match="rank"):
        RunConfig.model_validate({"base_model": "m", "datasets": ["d"], "method": "full", "lora_rank": 4})


def test_unknown_field_is_rejected():
    with pytest.raises(ValidationError, match="learnin_rate"):
        RunConfig.model_validate({"base_model": "m", "datasets": ["d"], "learnin_rate": 1e-4})


def test_training_options_defaults_and_old_boolean_checkpointing():
    cfg = RunConfig.model_validate({"base_model": "m", "datasets": ["d"], "gradient_checkpointing": True})
    assert cfg.gradient_checkpointing == "on"
    assert (cfg.stage, cfg.optimizer, cfg.attn_implementation, cfg.save_total_limit) == ("sft", "adamw_torch", "auto", 2)
    assert cfg.method.init == "default" and cfg.method.loraplus_lr_ratio is None


@pytest.mark.parametrize("extra,needle", [({"method": "qlora", "lora_init": "pissa"}, "pissa"),
                                          ({"lora_init": "pissa", "lora_use_dora": True}, "use_dora"),
                                          ({"lora_init": "pissa", "distributed": {"backend": "fsdp"}}, "pissa"),
                                          ({"lora_loraplus_lr_ratio": 0.5}, "loraplus_lr_ratio"),
                                          ({"optimizer": "sgd"}, "optimizer"),
                                          ({"stage": "ppo"}, "stage")])
def test_bad_option_combinations_are_rejected(extra, needle):
    with pytest.raises(ValidationError, match=needle):
        RunConfig.model_validate({"base_model": "m", "datasets": ["d"], **extra})


def test_train_form_values_for_the_new_options_make_a_valid_config():
    pytest.importorskip("gradio")
    from app.form import build_config, field_meta, validate_config

    assert field_meta(RunConfig, "gradient_checkpointing").choices == ("auto", "on", "off")
    lora = build_config({"base_model": "m", "datasets": ["d"], "method": "lora", "method.use_dora": True,
                         "method.init": "gaussian", "method.loraplus_lr_ratio": "16", "method.extra_trainable_modules":
                         ["embed_tokens"], "optimizer": "adafactor", "lr_scheduler": "warmup_stable_decay",
                         "neftune_noise_alpha": "5", "eval_steps": "", "save_total_limit": "3", "stage": "pt"})
    assert lora["method"]["loraplus_lr_ratio"] == 16.0 and lora["neftune_noise_alpha"] == 5.0
    assert "eval_steps" not in lora and lora["save_total_limit"] == 3 and validate_config(lora) == []
    freeze = build_config({"base_model": "m", "datasets": ["d"], "method": "freeze", "method.trainable_modules": "mlp",
                           "method.extra_modules": ["embed_tokens"], "method.use_dora": True})
    assert freeze["method"] == {"name": "freeze", "trainable_modules": ["mlp"], "extra_modules": ["embed_tokens"]}
    assert validate_config(freeze) == []


def test_datasets_take_plain_ids_or_weighted_entries():
    simple = RunConfig.model_validate({"base_model": "m", "datasets": ["ds_a", "ds_b"]})
    assert simple.datasets == ["ds_a", "ds_b"] and [c.weight for c in simple.dataset_choices] == [None, None]
    rich = RunConfig.model_validate({"base_model": "m", "datasets": [
        {"id": "ds_a", "weight": 0.7, "max_samples": 500}, {"id": "ds_b", "weight": 0.3}], "mixture_size": 1000})
    assert [(c.id, c.weight, c.max_samples) for c in rich.dataset_choices] == [("ds_a", 0.7, 500), ("ds_b", 0.3, None)]
    mixed = RunConfig.model_validate({"base_model": "m", "datasets": ["ds_a", {"id": "ds_b", "max_samples": 9}]})
    assert mixed.model_dump(mode="json")["datasets"] == ["ds_a", {"id": "ds_b", "weight": None, "max_samples": 9}]
    assert RunConfig.model_validate(mixed.model_dump(mode="json")) == mixed  # run.yaml round trip
    assert "weight / sum(weights)" in RunConfig.model_fields["datasets"].description


@pytest.mark.parametrize("extra,loc,needle", [
    ({"datasets": [{"id": "a", "weight": -1}]}, "datasets.0.entry.weight", "greater than or equal to 0"),
    ({"datasets": [{"id": "a", "weight": 0}, {"id": "b", "weight": 0.0}]}, "datasets", "every weight is 0"),
    ({"datasets": [{"id": "a", "weight": 1}, "b"]}, "datasets", "'b' has no weight while others do"),
    ({"datasets": [{"weight": 1}]}, "datasets.0.entry.id", "Field required"),
    ({"datasets": [{"id": "a", "share": 1}]}, "datasets.0.entry.share", "Extra inputs"),
    ({"mixture_size": 100}, "mixture_size", "no dataset has a weight"),
    ({"val_size": 0.1, "val_datasets": ["v"]}, "val_datasets", "val_size=0.1 and val_datasets are both set"),
])
def test_bad_mixtures_name_the_field_and_say_how_to_fix(extra, loc, needle):
    with pytest.raises(ValidationError) as err:
        RunConfig.model_validate({"base_model": "m", "datasets": ["d"], **extra})
    found = {".".join(map(str, e["loc"])): e["msg"] for e in err.value.errors()}
    assert loc in found and needle in found[loc], found


def test_orpo_and_simpo_have_their_own_settings_and_paper_defaults():
    simpo = RunConfig(base_model="m", datasets=["d"], stage="dpo", preference={"loss": "simpo"}).preference
    assert (simpo.reference_free, simpo.effective_beta, simpo.simpo_gamma) == (True, 2.0, 1.0)
    orpo = RunConfig(base_model="m", datasets=["d"], stage="dpo", preference={"loss": "orpo"}).preference
    assert (orpo.reference_free, orpo.orpo_lambda) == (True, 0.1)
    dpo = RunConfig(base_model="m", datasets=["d"], stage="dpo").preference
    assert (dpo.reference_free, dpo.effective_beta) == (False, 0.1)
    # LLaMA-Factory's flat names: pref_loss, simpo_gamma, and pref_beta as ORPO's λ
    flat = RunConfig.model_validate({"base_model": "m", "datasets": ["d"], "stage": "dpo", "pref_loss": "simpo",
                                     "pref_beta": 2.5, "simpo_gamma": 1.2, "pref_ftx": 0.5}).preference
    assert (flat.loss, flat.beta, flat.simpo_gamma, flat.sft_weight) == ("simpo", 2.5, 1.2, 0.5)
    lf_orpo = RunConfig.model_validate({"base_model": "m", "datasets": ["d"], "stage": "dpo", "pref_loss": "orpo",
                                        "pref_beta": 0.2}).preference
    assert (lf_orpo.orpo_lambda, lf_orpo.beta) == (0.2, None)


@pytest.mark.parametrize(("preference", "stage", "needle"), [
    ({"loss": "orpo", "beta": 0.2}, "dpo", "orpo_lambda"),
    ({"loss": "orpo", "sft_weight": 1.0}, "dpo", "already holds the SFT loss"),
    ({"simpo_gamma": 0.8}, "dpo", "set preference.loss to 'simpo'"),
    ({"loss": "simpo", "orpo_lambda": 0.3}, "dpo", "set preference.loss to 'orpo'"),
    ({"loss": "orpo"}, "kto", "applies to stage 'dpo' only"),
])
def test_reference_free_settings_out_of_place_are_rejected(preference, stage, needle):
    with pytest.raises(ValidationError, match=needle):
        RunConfig(base_model="m", datasets=["d"], stage=stage, per_device_batch_size=2, preference=preference)


def test_pissa_is_fine_without_a_reference_model():
    config = RunConfig(base_model="m", datasets=["d"], stage="dpo", method={"name": "lora", "init": "pissa"},
                       preference={"loss": "simpo"})
    assert config.method.init == "pissa"
    with pytest.raises(ValidationError, match="reference model"):
        RunConfig(base_model="m", datasets=["d"], stage="dpo", method={"name": "lora", "init": "pissa"})


@pytest.mark.parametrize(("extra", "needle"), [
    ({"stage": "grpo"}, "none is given"),
    ({"stage": "grpo", "per_device_batch_size": 3, "gradient_accumulation_steps": 1,
      "grpo": {"rewards": [{"name": "json_valid"}]}}, "make that a multiple of num_generations"),
    ({"stage": "sft", "grpo": {"num_generations": 8}}, "grpo settings apply to stage 'grpo'"),
    ({"stage": "grpo", "cutoff_len": 64, "grpo": {"rewards": [{"name": "json_valid"}]}}, "leaves no room for the prompt"),
    ({"stage": "grpo", "grpo": {"rewards": [{"name": "reward_model", "run": "../etc"}]}}, "should match pattern"),
    ({"stage": "grpo", "grpo": {"rewards": [{"name": "regex", "pattern": "("}]}}, "is no regular expression"),
    ({"stage": "grpo", "grpo": {"rewards": [{"name": "python", "path": "x.py"}]}}, "Extra inputs are not permitted"),
    ({"stage": "grpo", "grpo": {"rewards": [{"name": "shell", "cmd": "x"}]}}, "does not match any of the expected"),
])
def test_grpo_settings_are_checked(extra, needle):
    with pytest.raises(ValidationError, match=needle):
        RunConfig(base_model="m", datasets=["d"], **extra)


def test_grpo_config_with_rewards_is_padded_and_has_its_learning_rate():
    config = RunConfig(base_model="m", datasets=["d"], stage="grpo", per_device_batch_size=2,
                       gradient_accumulation_steps=2, grpo={"rewards": [{"name": "length", "target_chars": 40}]})
    assert config.packing is False and config.effective_learning_rate == 1e-5 and config.grpo.num_generations == 4

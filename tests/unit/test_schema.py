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

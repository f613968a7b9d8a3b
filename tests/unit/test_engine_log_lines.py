"""What the engine prints to a run's log: rounded numbers, and key=value text (never a Python dict) at the end."""

from __future__ import annotations

import re

from backend.engine.log_lines import describe_event, describe_result

LONG_FLOAT = re.compile(r"\d\.\d{6,}")  # a float printed with all its digits


def test_a_progress_line_rounds_every_number():
    row = {"step": 3, "total_steps": 10, "epoch": 0.3000000000000000444, "loss": 2.3456789012345678,
           "lr": 0.00019999999999999998, "grad_norm": 1.2345678901234567, "tokens_per_s": 123.4, "eta_s": 12.3456,
           "rewards/margins": 0.123456789012, "time": 1700000000.123456}
    line = describe_event(row)
    assert line == ("step 3/10 epoch 0.30 loss 2.346 lr 2.00e-04 grad_norm 1.235 reward margin 0.1235 123 tok/s "
                    "eta 12s")
    assert not LONG_FLOAT.search(line)
    eval_line = describe_event({"step": 4, "total_steps": 10, "epoch": 0.4, "eval_loss": 2.4012345678901})
    assert eval_line == "step 4/10 epoch 0.40 eval_loss 2.401"
    # a first step without a speed or an ETA yet, a non-finite loss, GPU memory when the events carry it
    first = describe_event({"step": 1, "total_steps": 2, "epoch": None, "loss": None, "lr": None, "grad_norm": None,
                            "tokens_per_s": None, "eta_s": None, "gpu_mem": 1.23456})
    assert first == "step 1/2 epoch 0.00 loss - lr - grad_norm - gpu_mem 1.235 GiB eta -"


def test_the_result_line_is_key_value_text_not_a_dict():
    result = {"status": "succeeded", "output": "adapter", "train_loss": 2.0345678901234567, "runtime_s": 12.34,
              "precision": "bf16", "gradient_checkpointing": False, "memory_plan": None,
              "distributed": {"backend": "ddp", "world_size": 2}, "target_modules": ["q_proj", "v_proj"]}
    line = describe_result("succeeded", result)
    assert line == ("succeeded: status=succeeded output=adapter train_loss=2.035 runtime_s=12.34 precision=bf16 "
                    "gradient_checkpointing=False distributed.backend=ddp distributed.world_size=2 "
                    "target_modules=q_proj,v_proj")
    assert "{" not in line and "'" not in line and not LONG_FLOAT.search(line)
    assert describe_result("succeeded", {}) == "succeeded:"


def test_sampled_replies_log_as_the_card_shows_them():
    from backend.engine.log_lines import describe_samples

    lines = describe_samples([{"prompt": "What is 3 plus 3?", "completion": " six", "rewards": {"regex": 1.0,
                                                                                             "length": 0.5},
                               "reward": 1.5},
                              {"prompt": "Hi", "completion": "", "rewards": {"regex": None}, "reward": None}])
    assert lines == ["  sample 1: 'What is 3 plus 3?' -> ' six' reward 1.5 (regex 1, length 0.5)",
                     "  sample 2: 'Hi' -> '' reward - (regex -)"]
    assert describe_samples([]) == []

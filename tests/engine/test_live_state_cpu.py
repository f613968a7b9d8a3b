"""check_as_asked: a run whose live distributed state is not what it asked for fails, naming what runs instead
(the real runs that produce these facts are in test_sharded_cpu.py)."""

from __future__ import annotations

import pytest

from backend.config.schema import RunConfig
from backend.engine.failures import EngineError
from backend.engine.live_state import check_as_asked


def config(**distributed) -> RunConfig:
    return RunConfig(base_model="m", datasets=["d"], distributed={"num_processes": 2, **distributed})


@pytest.mark.parametrize("asked, live, words", [
    ({"backend": "fsdp"}, {"backend": "ddp", "world_size": 2, "sharded_params": False}, "ddp is running"),
    ({"backend": "fsdp"}, {"backend": "fsdp", "world_size": 2, "sharded_params": False}, "not sharded"),
    ({"backend": "fsdp"}, {"backend": "fsdp", "world_size": 2, "sharded_params": True, "local_share": 1.0},
     "each holds the whole model"),
    ({"backend": "deepspeed", "zero_stage": 3}, {"backend": "deepspeed", "world_size": 2, "zero_stage": 2,
                                                 "offload": [], "sharded_params": False}, "runs stage 2"),
    ({"backend": "deepspeed", "zero_stage": 3}, {"backend": "deepspeed", "world_size": 2, "zero_stage": 3,
                                                 "offload": [], "sharded_params": False}, "not partitioned"),
    ({"backend": "deepspeed", "zero_stage": 2, "offload_optimizer": True},
     {"backend": "deepspeed", "world_size": 2, "zero_stage": 2, "offload": [], "sharded_params": False},
     "offload of optimizer"),
])
def test_what_runs_must_be_what_was_asked(asked, live, words):
    with pytest.raises(EngineError) as err:
        check_as_asked(config(**asked), live)
    assert words in str(err.value), str(err.value)


@pytest.mark.parametrize("asked, live", [
    ({"backend": "fsdp"}, {"backend": "fsdp", "world_size": 2, "sharded_params": True, "local_share": 0.5,
                           "offload": []}),
    # one GPU: FSDP manages every parameter, and one process holds all of each
    ({"backend": "fsdp", "num_processes": 1}, {"backend": "fsdp", "world_size": 1, "sharded_params": True,
                                               "local_share": 1.0, "offload": []}),
    ({"backend": "deepspeed", "zero_stage": 3, "offload_optimizer": True, "offload_params": True},
     {"backend": "deepspeed", "world_size": 2, "zero_stage": 3, "offload": ["optimizer", "params"],
      "sharded_params": True}),
    ({"backend": "ddp"}, {"backend": "ddp", "world_size": 2, "sharded_params": False}),
])
def test_a_run_that_got_what_it_asked_for_passes(asked, live):
    check_as_asked(config(**asked), live)

"""A finished stage-rm run's reward model as a GRPO reward function (RLHF's RM -> RL half).

The rm run is found beside the grpo run (``runs/<job id>``, the id from ``grpo.rewards[].run``); its output is
loaded as a sequence classifier: model/ as it is, adapter/ merged into its base. Each (prompt, reply) is tokenized
with the rm run's tokenizer exactly as stage rm tokenized its pairs, and the batch is scored at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from backend.config import rundir
from backend.engine.failures import EngineError
from backend.engine.rewards import reply_text


def load_reward_model(rm_run_dir: Path):
    """``(model, tokenizer)`` of a succeeded stage-rm run; an EngineError saying why otherwise."""
    import backend.engine.stages.rm as rm
    from backend.engine.model import load_tokenizer

    hint = "pick the job id of a succeeded stage-rm run (Runs page) in grpo.rewards[].run"
    if not (rm_run_dir / rundir.RUN_FILE).is_file():
        raise EngineError(f"reward_model: there is no run {rm_run_dir.name!r} beside this run", hint)
    run = rundir.read_resolved_run(rm_run_dir)
    if run.config.stage != "rm":
        raise EngineError(f"reward_model: run {rm_run_dir.name!r} is a stage {run.config.stage!r} run, not a reward "
                          "model (stage rm)", hint)
    import torch

    model_dir, adapter_dir = rm_run_dir / rundir.MODEL_DIR, rm_run_dir / rundir.ADAPTER_DIR
    if (model_dir / "config.json").is_file():
        model, tokenizer_dir = rm.load_model(model_dir, torch.float32), model_dir
    elif (adapter_dir / "adapter_config.json").is_file():
        from peft import PeftModel

        base = rm.load_model(run.model_path, torch.float32)
        model = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
        tokenizer_dir = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else Path(run.model_path)
    else:
        raise EngineError(f"reward_model: run {rm_run_dir.name!r} has no trained model or adapter (not finished?)", hint)
    tokenizer = load_tokenizer(tokenizer_dir)
    model.config.pad_token_id = tokenizer.pad_token_id  # the reward is read at the last non-pad token
    model.requires_grad_(False)
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available() else "cpu"
    return model.to(device).eval(), tokenizer


def scored_ids(tokenizer, prompt: list[dict], reply: str) -> list[int]:
    """prompt + reply token ids exactly as stage rm tokenized its pairs (an empty reply: the prompt alone)."""
    from backend.engine.preference import split_reply

    split = split_reply(tokenizer, prompt + [{"role": "assistant", "content": reply}])
    if split is None:
        return tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                             return_dict=True)["input_ids"]
    return split[0] + split[1]


def reward_model_function(rm_run_dir: Path):
    """A trl reward function scoring each prompt + reply with the rm run's reward model."""
    import torch

    model, tokenizer = load_reward_model(rm_run_dir)
    print(f"reward_model: scoring replies with run {rm_run_dir.name} ({type(model).__name__})", flush=True)

    def reward_model(prompts, completions, **_) -> list[float]:
        sequences = [scored_ids(tokenizer, list(prompt), reply_text(completion))
                     for prompt, completion in zip(prompts, completions)]
        longest = max(len(ids) for ids in sequences)
        input_ids = torch.tensor([ids + [tokenizer.pad_token_id] * (longest - len(ids)) for ids in sequences])
        mask = torch.tensor([[1] * len(ids) + [0] * (longest - len(ids)) for ids in sequences])
        with torch.no_grad():
            scores = model(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device)).logits
        return scores[:, 0].float().tolist()

    return reward_model

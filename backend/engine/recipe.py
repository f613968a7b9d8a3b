"""The training recipe, top to bottom: read run.yaml -> seed -> resolve precision/attention -> tokenizer and the
stage's examples -> load the model -> apply the method -> the stage's trainer -> train (resume) -> save the
adapter or the model atomically -> write result.json. What differs per stage (sft, pt, dpo, kto) lives in
:mod:`backend.engine.stages`.

    python -m backend.engine train --run-dir runs/<id>        (also under ``accelerate launch``)
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from backend.config import rundir
from backend.config.schema import ResolvedRun
from backend.engine import run_setup, stages
from backend.engine.early_stopping import best_checkpoint_facts
from backend.engine.init_from import load_parent_adapter
from backend.engine.live_state import watch_live_state
from backend.engine.log_lines import describe_result
from backend.engine.named_chat_templates import apply_chat_template_name
from backend.engine.outputs import (
    checkpoint_step,
    clear_previous_attempt,
    latest_checkpoint,
    save_initial_adapter,
    save_output,
    write_engine_facts,
    write_result,
)
from backend.engine.stages.trainer import StageContext, finish_trainer
from backend.engine.stall_probe import hang_callback, install_stack_dump
from backend.engine.trackers import prepare_tracker


def is_main_process() -> bool:
    """Rank 0 under accelerate/torchrun (which set RANK), or a plain single process."""
    return int(os.environ.get("RANK", "0")) == 0


def train(run_dir: str | Path) -> int:
    """Run the training described by ``run_dir/run.yaml``; always leave a result.json; return the exit code."""
    run_dir = Path(run_dir).resolve()
    started = time.time()
    checkpoint = latest_checkpoint(run_dir)
    if is_main_process():
        clear_previous_attempt(run_dir, keep_events_up_to=checkpoint_step(checkpoint) if checkpoint else None)
    if is_main_process():
        install_stack_dump(run_dir)  # the stall watchdog's SIGUSR1 -> a Python stack dump in stacks.txt
    facts: dict = {}  # what the engine resolved (precision, attention, memory plan...), in result.json either way
    try:
        run = rundir.read_resolved_run(run_dir)
        result = run_stage(run, run_dir, resume_from=checkpoint, facts=facts)
    except Exception as exc:  # noqa: BLE001 - every failure must end in result.json
        from backend.engine.failures import classify_failure

        traceback.print_exc(file=sys.stderr)
        error, hint = classify_failure(exc)
        print(f"FAILED: {error}\nhint: {hint}", file=sys.stderr, flush=True)
        if is_main_process():
            write_result(run_dir, {"status": "failed", "error": error, "hint": hint, **facts})
        return 1
    result["runtime_s"] = round(time.time() - started, 2)
    if is_main_process():
        write_result(run_dir, result)
    print(describe_result("succeeded", result), flush=True)  # key=value text, rounded (not a dict)
    return 0


def run_stage(run: ResolvedRun, run_dir: Path, resume_from: Path | None = None, facts: dict | None = None) -> dict:
    from transformers import set_seed

    from backend.engine import methods
    from backend.engine import model as model_io

    config, facts = run.config, {} if facts is None else facts
    stage = stages.get_stage(config.stage)
    set_seed(config.seed)
    precision, attention = run_setup.resolve_compute(config, facts)  # cheap checks first
    prepare_tracker(run, run_dir, facts)

    # tokenizer and data before the model: a bad dataset fails before minutes of model loading
    tokenizer = model_io.load_tokenizer(run.model_path)
    apply_chat_template_name(tokenizer, config.chat_template)
    train_set, eval_set, stats = stages.build_datasets(run, tokenizer)
    print(stats.describe(), flush=True)
    plan = run_setup.plan_memory(run, precision, stage, train_set, facts)
    train_set, batch_tokens = run_setup.group_batches(config, plan, train_set, facts)

    loaded = run_setup.load_base_model(run, precision, attention, plan, facts, stage.load_model)
    peft_config = methods.apply_method(loaded.model, config.method, loaded.checkpointing)
    ctx = StageContext(run=run, run_dir=run_dir, model=loaded.model, tokenizer=tokenizer, peft_config=peft_config,
                       precision=precision, train_dataset=train_set, eval_dataset=eval_set,
                       checkpointing=loaded.checkpointing, liger=loaded.liger, attention=loaded.attention,
                       packed_groups=bool(batch_tokens), facts=facts)
    trainer = stage.build_trainer(ctx)
    hooks = finish_trainer(trainer, ctx)
    if (hang := hang_callback()) is not None:  # tests: a deliberately hung step for the stall watchdog
        trainer.add_callback(hang)
    if run.init_from and peft_config is not None:  # a continued run: the parent's adapter, checked on load
        facts["init_from"] = {**load_parent_adapter(trainer.model, run.init_from), "run": config.init_from_run}
    watch_live_state(trainer, config, facts, write_engine_facts, run_dir)  # FSDP on CPU; what really runs
    initial_adapter = save_initial_adapter(trainer, run_dir) if peft_config is not None else None
    trainable, total = methods.count_parameters(trainer.model)
    print(f"method {config.method.name}: {trainable:,} of {total:,} parameters trainable", flush=True)
    if is_main_process():
        write_engine_facts(run_dir, facts)

    if resume_from is not None:
        print(f"resuming from {resume_from.name} (step {checkpoint_step(resume_from)})", flush=True)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    # with load_best_model_at_end the model now holds the best step's weights: an eval here would log their loss
    # at the last step
    if eval_set is not None and not config.load_best_model_at_end and not _evaluated_at(trainer.state,
                                                                                         trainer.state.global_step):
        trainer.evaluate()
    facts.update(best_checkpoint_facts(config, trainer.state, hooks.early_stop))

    # save atomically: adapter/ for LoRA, model/ for full/freeze
    output = "adapter" if peft_config is not None else "model"
    save_output(trainer, tokenizer, run_dir / (rundir.ADAPTER_DIR if peft_config is not None else rundir.MODEL_DIR),
                initial_adapter=initial_adapter)
    if hooks.stop_request.stopped_at is not None:
        facts["stopped_early_at_step"] = hooks.stop_request.stopped_at
    if is_main_process() and ("early_stopping" in facts or "best_checkpoint" in facts):
        write_engine_facts(run_dir, facts)  # the card reads engine.json: where and why training stopped
    return {"status": "succeeded", "output": output, "train_loss": hooks.events.train_loss, **facts}


def _evaluated_at(state, step: int) -> bool:
    return any("eval_loss" in row and row.get("step") == step for row in state.log_history)

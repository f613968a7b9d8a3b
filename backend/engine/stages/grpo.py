"""Stage ``grpo``: Group Relative Policy Optimization (DeepSeekMath) with trl's GRPOTrainer and the run's reward
functions (:mod:`backend.engine.rewards`).

Examples: any chat row gives a prompt (the conversation up to its last user turn; tool conversations written as
plain text, as SFT renders them for templates without tools) and a reference reply (the assistant reply after it,
"" when there is none) that exact_match/contains compare against. Prompts longer than cutoff_len -
grpo.max_completion_length tokens are left out (counted in the log). trl renders the prompt with the tokenizer's
chat template (the run's named template, if any), samples grpo.num_generations replies per prompt, scores them,
and raises the likelihood of the replies above their group's mean. Logged per step: reward (weighted sum),
rewards/<function>/mean, kl (with grpo.beta > 0) and completions/mean_length, in events.jsonl; two sampled
replies with their rewards per logging step in events.jsonl (``samples``, clipped: the Runs card shows them) and
the run log.
"""

from __future__ import annotations

from backend.config.schema import ResolvedRun
from backend.engine.chat_render import plain_tool_messages
from backend.engine.data import DataStats, Mixture, read_mixture
from backend.engine.model import load_model
from backend.engine.rows import Row
from backend.engine.stages.trainer import StageContext, trainer_class, training_args

__all__ = ["build_examples", "build_trainer", "load_model", "prompt_and_reference", "sequence_lengths"]


def prompt_and_reference(row: Row) -> tuple[list[dict], str] | None:
    """The messages up to the last user turn and the reply after it (""); None without a user turn."""
    messages = row.messages
    if row.tools or any(m["role"] == "tool" or m.get("tool_calls") for m in messages):
        messages = plain_tool_messages(messages, row.tools)
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last_user is None:
        return None
    after = messages[last_user + 1:]
    reference = after[0]["content"] if after and after[0]["role"] == "assistant" else ""
    return [{"role": m["role"], "content": m["content"]} for m in messages[: last_user + 1]], reference


def prompt_examples(rows: list[tuple[int, Row]], tokenizer, run: ResolvedRun, stats: DataStats, mixture: Mixture,
                    evaluation: bool = False) -> list[dict]:
    config = run.config
    room = config.cutoff_len - config.grpo.max_completion_length
    examples = []
    for index, row in rows:
        split = prompt_and_reference(row)
        if split is None:
            stats.dropped_no_target += 1
            continue
        prompt, reference = split
        length = len(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                   return_dict=True)["input_ids"])
        if length > room:
            stats.dropped_no_target += 1
            continue
        examples.append({"prompt": prompt, "reference": reference,
                         "sequence_length": length + config.grpo.max_completion_length})
        mixture.count(index, 1, evaluation)
    return examples


def build_examples(run: ResolvedRun, tokenizer, stats: DataStats) -> tuple[list[dict], list[dict]]:
    mixture = read_mixture(run, stats)
    train = prompt_examples(mixture.train, tokenizer, run, stats, mixture)
    held = prompt_examples(mixture.eval, tokenizer, run, stats, mixture, evaluation=True)
    if stats.dropped_no_target:
        print(f"grpo: {stats.dropped_no_target} rows left out (no user turn, or a prompt longer than cutoff_len - "
              "max_completion_length)", flush=True)
    return train, held


def sequence_lengths(dataset) -> tuple[list[int], int]:
    """Prompt + the longest reply, per prompt (the memory plan's view of one sampled reply)."""
    return list(dataset["sequence_length"]), 1


def build_trainer(ctx: StageContext):
    from trl import GRPOConfig, GRPOTrainer

    from backend.engine.python_reward_load import python_reward_function
    from backend.engine.reward_model_score import reward_model_function
    from backend.engine.rewards import build_reward_functions

    config = ctx.run.config
    grpo = config.grpo
    functions, weights = build_reward_functions(
        grpo, lambda spec: reward_model_function(ctx.run_dir.parent / spec.run),  # runs/<job id> beside this run
        load_python=lambda function: python_reward_function(ctx.run_dir, function))
    if grpo.beta == 0:
        ctx.facts["reference_model"] = "none"
    else:
        ctx.facts["reference_model"] = ("base with the adapter switched off" if ctx.peft_config is not None
                                        else "frozen copy of the base model")
    args = training_args(
        GRPOConfig, ctx, per_device_train_batch_size=config.per_device_batch_size,
        per_device_eval_batch_size=grpo.num_generations,  # one group per evaluation batch
        num_generations=grpo.num_generations, max_completion_length=grpo.max_completion_length,
        temperature=grpo.temperature, beta=grpo.beta, loss_type=grpo.loss_type, reward_weights=weights,
        include_num_input_tokens_seen="no",  # trl counts its own tokens (num_tokens)
        # the run log's sampled replies are EventsCallback's (the card's); trl's own completions log (a table in
        # the log, a parquet file per step) only for W&B, whose completions table it feeds
        log_completions=config.report_to == "wandb", num_completions_to_print=2,
    )
    return _with_samples(trainer_class(GRPOTrainer, ctx))(
        model=ctx.model, reward_funcs=functions, args=args, train_dataset=ctx.train_dataset,
        eval_dataset=ctx.eval_dataset, processing_class=ctx.tokenizer, peft_config=ctx.peft_config)


def _with_samples(base):
    """``base`` plus ``sampled_completions()``: the latest sampled replies with each reward function's score, read
    from what trl keeps for its own completion log (``_logs``), for EventsCallback's rows."""
    from backend.engine.log_lines import latest_samples

    class GRPOWithSamples(base):
        def sampled_completions(self) -> list[dict]:
            logs = self._logs
            return latest_samples(list(logs["prompt"]), list(logs["completion"]),
                                  {name: list(scores) for name, scores in logs["rewards"].items()},
                                  [float(w) for w in self.reward_weights.tolist()])

    GRPOWithSamples.__name__ = GRPOWithSamples.__qualname__ = base.__name__
    return GRPOWithSamples

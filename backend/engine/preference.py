"""Preference data (stages ``dpo``, ``kto`` and ``rm``): rows -> prompt/reply token ids.

The rows come from the same mixture as SFT (:func:`backend.engine.data.read_mixture`: weights, caps,
``val_size``, validation datasets), then each is rendered with our chat-template rendering
(:func:`backend.engine.chat_render.find_assistant_spans`, tool conversations as in SFT) and tokenized piece by
piece at the same borders as :func:`backend.engine.data.tokenize_conversation`, so prompts and replies are exactly
the tokens SFT would see:

- ``prompt_ids``: everything before the last assistant reply (system prompt, earlier turns, generation prompt);
- a reply's ids: its content and the end-of-turn token (what the template writes after that is left out).

dpo and rm take preference rows -> ``{"prompt_ids", "chosen_ids", "rejected_ids"}``. kto takes KTO rows ->
``{"prompt_ids", "completion_ids", "label"}``, and preference rows unpaired into two such examples (chosen: true,
rejected: false), as trl's ``unpair_preference_dataset`` does. KTO's training examples are shuffled once with the
seed: trl reads them in order (its KL term pairs each prompt with a neighbour's reply), and a pair's two halves
must not sit side by side. Longer than ``cutoff_len``: the prompt keeps its end (the question and the generation
prompt; at least half of cutoff_len when it needs it) and the replies their start.

The trainers are in :mod:`backend.engine.stages.dpo`, ``kto`` and ``rm``.
"""

from __future__ import annotations

import random
from itertools import pairwise

from backend.config.schema import ResolvedRun
from backend.engine.chat_render import find_assistant_spans, prepare_tool_conversation
from backend.engine.data import DataStats, Mixture
from backend.engine.failures import DataError
from backend.engine.rows import Row

NEEDS = {
    "dpo": ("preference rows (a prompt, a chosen and a rejected reply)",
            "pick a preference dataset (e.g. the built-in preference_demo), or use stage sft"),
    "kto": ("KTO rows (a reply labelled true or false) or preference rows",
            "pick a KTO or preference dataset (e.g. the built-in preference_demo), or use stage sft"),
    "rm": ("preference rows (a prompt, a chosen and a rejected reply)",
           "pick a preference dataset (e.g. the built-in preference_demo)"),
}
PAIRED_STAGES = ("dpo", "rm")  # chosen and rejected side by side; kto unpairs them


def split_reply(tokenizer, messages: list[dict], tools: list[dict] | None = None
                ) -> tuple[list[int], list[int]] | None:
    """``(prompt_ids, reply_ids)`` of a conversation ending with an assistant reply, tokenized as SFT does;
    None when the last message is no assistant reply with text."""
    if not messages or messages[-1]["role"] != "assistant":
        return None
    messages, tools = prepare_tool_conversation(tokenizer, messages, tools)
    text, spans = find_assistant_spans(tokenizer, messages, tools)
    if len(spans) != sum(m["role"] == "assistant" for m in messages):  # an empty reply has no span
        return None
    start, end = spans[-1]
    borders = sorted({0, start, *(pos for span in spans[:-1] for pos in span)})
    prompt_ids: list[int] = []
    for a, b in pairwise(borders):
        prompt_ids += tokenizer(text[a:b], add_special_tokens=False)["input_ids"]
    return prompt_ids, tokenizer(text[start:end], add_special_tokens=False)["input_ids"]


def truncate(prompt: list[int], replies: list[list[int]], cutoff_len: int
             ) -> tuple[list[int], list[list[int]], bool]:
    """Fit prompt + the longest reply into ``cutoff_len``: the prompt keeps its end (at least half of cutoff_len
    when it is that long), the replies their start. Returns ``(prompt, replies, truncated)``."""
    longest = max(len(reply) for reply in replies)
    if len(prompt) + longest <= cutoff_len:
        return prompt, replies, False
    keep = min(len(prompt), max(cutoff_len - longest, cutoff_len // 2))
    room = cutoff_len - keep
    return prompt[len(prompt) - keep:], [reply[:room] for reply in replies], True


def tokenize_pair(tokenizer, row: Row) -> dict[str, list[int]] | None:
    """A preference row as ``{"prompt_ids", "chosen_ids", "rejected_ids"}`` (untruncated); None without replies."""
    chosen = split_reply(tokenizer, row.messages, row.tools)
    rejected_turn = {"role": "assistant", "content": row.rejected["content"]}
    rejected = split_reply(tokenizer, row.messages[:-1] + [rejected_turn], row.tools)
    if chosen is None or rejected is None:
        return None
    if chosen[0] != rejected[0]:
        raise DataError("the chat template renders the same prompt differently before the chosen and the rejected "
                        "reply, so the pair has no common prompt to compare the replies on",
                        "use a model whose chat template renders earlier turns independently of the last reply")
    return {"prompt_ids": chosen[0], "chosen_ids": chosen[1], "rejected_ids": rejected[1]}


def tokenize_unpaired(tokenizer, row: Row) -> list[dict]:
    """A KTO row as one ``{"prompt_ids", "completion_ids", "label"}`` example; a preference row as two (its
    chosen reply desirable, its rejected reply undesirable)."""
    if row.rejected is not None:
        pair = tokenize_pair(tokenizer, row)
        if pair is None:
            return []
        return [{"prompt_ids": pair["prompt_ids"], "completion_ids": pair["chosen_ids"], "label": True},
                {"prompt_ids": pair["prompt_ids"], "completion_ids": pair["rejected_ids"], "label": False}]
    split = split_reply(tokenizer, row.messages, row.tools)
    return [] if split is None else [{"prompt_ids": split[0], "completion_ids": split[1], "label": bool(row.label)}]


def _check_kind(row: Row, stage: str, source_name: str) -> None:
    usable = row.kind == "preference" if stage in PAIRED_STAGES else row.kind in ("preference", "kto")
    if not usable:
        what, hint = NEEDS[stage]
        raise DataError(f"dataset {source_name} has {row.kind} rows and stage {stage} trains on {what}", hint)


def build_preference_examples(run: ResolvedRun, tokenizer, stats: DataStats, mixture: Mixture
                              ) -> tuple[list[dict], list[dict]]:
    """``(train, eval)`` pairs (dpo, rm) or KTO examples of the run's mixture."""
    train = preference_examples(mixture.train, tokenizer, run, stats, mixture)
    return train, preference_examples(mixture.eval, tokenizer, run, stats, mixture, evaluation=True)


def preference_examples(rows: list[tuple[int, Row]], tokenizer, run: ResolvedRun, stats: DataStats,
                        mixture: Mixture, evaluation: bool = False) -> list[dict]:
    """The pairs or kto examples of ``(source index, row)`` pairs, truncated to cutoff_len and counted into
    ``stats`` and the mixture's sources (a repeated row is tokenized once)."""
    config = run.config
    stage, cutoff = config.stage, config.cutoff_len
    cache: dict[int, list[dict]] = {}
    examples: list[dict] = []
    for index, row in rows:
        if id(row) not in cache:
            _check_kind(row, stage, mixture.sources[index].name)
            paired = stage in PAIRED_STAGES
            made = [tokenize_pair(tokenizer, row)] if paired else tokenize_unpaired(tokenizer, row)
            made = [example for example in made if example is not None]
            if not made:
                stats.dropped_no_target += 1
            reply_keys = ("chosen_ids", "rejected_ids") if paired else ("completion_ids",)
            fitted = []
            for example in made:
                prompt, replies, cut = truncate(example["prompt_ids"], [example[k] for k in reply_keys], cutoff)
                stats.truncated += cut
                fitted.append({**example, "prompt_ids": prompt, **dict(zip(reply_keys, replies))})
            cache[id(row)] = fitted
        examples += cache[id(row)]
        mixture.count(index, len(cache[id(row)]), evaluation)
    if stage == "kto" and not evaluation:
        random.Random(f"kto:{config.seed}").shuffle(examples)  # trl reads KTO data in order (see module docstring)
    return examples


def sequence_lengths(dataset) -> tuple[list[int], int]:
    """``(lengths, sequences per example)`` of a dpo/kto/rm dataset, for the memory plan: dpo and rm run chosen and
    rejected side by side, kto each example and its KL sequence."""
    prompts = [len(ids) for ids in dataset["prompt_ids"]]
    if "chosen_ids" in dataset.column_names:
        replies = [max(len(c), len(r)) for c, r in zip(dataset["chosen_ids"], dataset["rejected_ids"])]
    else:
        replies = [len(ids) for ids in dataset["completion_ids"]]
    return [p + r for p, r in zip(prompts, replies)], 2

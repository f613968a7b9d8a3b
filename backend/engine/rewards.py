"""The built-in reward functions of stage grpo (:mod:`backend.config.grpo`), in trl's reward-function form:
``f(prompts, completions, reference, **kwargs) -> list[float]``, one score per sampled reply. Pure Python.

A completion is the reply text, or (conversational prompts) a list of messages whose last one is the reply.
``reference`` is each prompt's reference reply from the dataset ("" when the row has none).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from backend.config.grpo import GrpoConfig

RewardFunction = Callable[..., list[float]]


def reply_text(completion) -> str:
    if isinstance(completion, str):
        return completion
    return str(completion[-1].get("content") or "") if completion else ""


def _normalized(text: str) -> str:
    return " ".join(text.split()).casefold()


def exact_match(completions, reference, **_) -> list[float]:
    return [float(_normalized(reply_text(c)) == _normalized(r)) for c, r in zip(completions, reference)]


def contains(completions, reference, **_) -> list[float]:
    return [float(bool(r.strip()) and _normalized(r) in _normalized(reply_text(c)))
            for c, r in zip(completions, reference)]


def json_valid(completions, **_) -> list[float]:
    def parses(text: str) -> bool:
        try:
            json.loads(text)
        except ValueError:
            return False
        return True

    return [float(parses(reply_text(c).strip())) for c in completions]


def regex_reward(pattern: str) -> RewardFunction:
    compiled = re.compile(pattern)

    def regex(completions, **_) -> list[float]:
        return [float(compiled.search(reply_text(c)) is not None) for c in completions]

    return regex


def length_reward(target_chars: int) -> RewardFunction:
    def length(completions, **_) -> list[float]:
        return [max(0.0, 1.0 - abs(len(reply_text(c)) - target_chars) / target_chars) for c in completions]

    return length


def build_reward_functions(grpo: GrpoConfig, load_reward_model: Callable[..., RewardFunction] | None = None,
                           load_python: Callable[[str], RewardFunction] | None = None
                           ) -> tuple[list[RewardFunction], list[float]]:
    """``(functions, weights)`` of the run; each function is named as logged (``rewards/<name>/mean``): the
    reward's name, with its position when a name repeats (``regex_2``). ``load_reward_model(spec)`` makes the
    function of a ``reward_model`` reward (it loads a model, so it lives with the engine's stage);
    ``load_python("file:function")`` the function of a ``python`` reward, logged as ``file.function``."""
    functions: list[RewardFunction] = []
    for index, spec in enumerate(grpo.rewards):
        if spec.name == "reward_model":
            if load_reward_model is None:
                raise ValueError("a reward_model reward needs load_reward_model")
            function = load_reward_model(spec)
        elif spec.name == "python":
            if load_python is None:
                raise ValueError("a python reward needs load_python")
            function = load_python(spec.function)
        elif spec.name == "regex":
            function = regex_reward(spec.pattern)
        elif spec.name == "length":
            function = length_reward(spec.target_chars)
        else:
            function = {"exact_match": exact_match, "contains": contains, "json_valid": json_valid}[spec.name]
        repeated = sum(_label(other) == _label(spec) for other in grpo.rewards) > 1
        name = f"{_label(spec)}_{index + 1}" if repeated else _label(spec)

        def named(*args, _function=function, **kwargs) -> list[float]:
            return _function(*args, **kwargs)

        named.__name__ = named.__qualname__ = name
        functions.append(named)
    return functions, [spec.weight for spec in grpo.rewards]


def _label(spec) -> str:
    return spec.function.replace(":", ".") if spec.name == "python" else spec.name

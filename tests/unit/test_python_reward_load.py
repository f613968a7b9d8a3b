"""The engine's loader of grpo python rewards: the function from the run directory's rewards/ copy, its scores
checked (one finite number per reply) so a wrong return fails the run naming the function."""

from __future__ import annotations

import pytest

from backend.engine.python_reward_load import python_reward_function

SOURCE = '''
def good(prompts, completions, reference, **kwargs):
    return [len(c) + (1 if r else 0) for c, r in zip(completions, reference)]

def too_few(prompts, completions, **kwargs):
    return [1.0]

def not_numbers(prompts, completions, **kwargs):
    return ["1"] * len(completions)

NOT_A_FUNCTION = 3
'''


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "rewards").mkdir()
    (tmp_path / "rewards" / "mine.py").write_text(SOURCE)
    return tmp_path


def test_scores_come_back_as_floats(run_dir):
    good = python_reward_function(run_dir, "mine:good")
    assert good(prompts=["p", "p"], completions=["ab", "c"], reference=["x", ""]) == [3.0, 1.0]


@pytest.mark.parametrize(("function", "words"), [("mine:too_few", "one finite number per completion (2)"),
                                                 ("mine:not_numbers", "returned ['1', '1']")])
def test_a_wrong_return_fails_naming_the_function(run_dir, function, words):
    with pytest.raises(TypeError, match=rf"python reward {function} .*") as caught:
        python_reward_function(run_dir, function)(prompts=["p", "p"], completions=["a", "b"])
    assert words in str(caught.value)


def test_missing_file_or_function_is_named(run_dir):
    with pytest.raises(ValueError, match="other.py is missing"):
        python_reward_function(run_dir, "other:good")
    with pytest.raises(TypeError, match="has no function 'NOT_A_FUNCTION'"):
        python_reward_function(run_dir, "mine:NOT_A_FUNCTION")

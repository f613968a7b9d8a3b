"""Every normalized row kind as supervised training (and the preview) sees it: preference rows train on the
chosen reply, KTO rows only when labelled true, raw text only in stage pt, and tool conversations render with
any chat template: which tokens carry loss."""

from __future__ import annotations

import json

import pytest

from backend.config.schema import DatasetRef, ResolvedRun, RunConfig
from backend.engine.chat_render import supports_native_tools
from backend.engine.data import IGNORE_INDEX, DataStats, tokenize_row
from backend.engine.failures import DataError
from backend.engine.model import load_tokenizer
from backend.engine.preview import preview_dataset
from backend.engine.rows import iter_rows, parse_row
from backend.engine.stages import build_datasets, build_examples
from tests.engine.tiny_runs import write_jsonl

PROMPT = [{"role": "user", "content": "What is two plus two?"}]
PREFERENCE = {"messages": PROMPT + [{"role": "assistant", "content": "Four."}],
              "rejected": {"role": "assistant", "content": "Five, surely."}}
TOOLS_ROW = {
    "tools": [{"name": "get_weather", "description": "Weather of a city",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"role": "tool", "content": "sunny, 21 C"},
        {"role": "assistant", "content": "It is sunny."},
    ],
}
# A ChatML template that knows tools (like Qwen2.5's, trimmed): tool list in the system turn, calls as
# <tool_call> JSON, tool results in their own 'tool' turns.
TOOLS_TEMPLATE = (
    "{% if tools %}{{ '<|im_start|>system\\n# Tools\\n' }}{% for tool in tools %}{{ tool | tojson }}{{ '\\n' }}"
    "{% endfor %}{{ '<|im_end|>\\n' }}{% endif %}"
    "{% for message in messages %}"
    "{% if message.role == 'assistant' and message.tool_calls %}{{ '<|im_start|>assistant\\n' + message.content }}"
    "{% for call in message.tool_calls %}{{ '<tool_call>' }}{{ call.function | tojson }}{{ '</tool_call>' }}"
    "{% endfor %}{{ '<|im_end|>\\n' }}"
    "{% else %}{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


def trained(tokenizer, example) -> list[str]:
    """Decode each contiguous stretch of tokens that carries loss."""
    runs, current = [], []
    for token, label in zip(example["input_ids"], example["labels"]):
        if label != IGNORE_INDEX:
            current.append(token)
        elif current:
            runs, current = runs + [current], []
    return [tokenizer.decode(r) for r in runs + ([current] if current else [])]


def run_on(tmp_path, model_dir, rows, name="d", fmt="messages", **config) -> ResolvedRun:
    path = write_jsonl(tmp_path / f"{name}.jsonl", rows)
    return ResolvedRun(run_id="kinds", config=RunConfig(base_model=str(model_dir), datasets=[name], **config),
                       model_path=str(model_dir),
                       datasets=[DatasetRef(id=name, name=name, path=str(path), num_rows=len(rows), format=fmt)])


def test_preference_rows_train_on_the_chosen_reply_only(tmp_path, tiny_model_dir, tokenizer):
    run = run_on(tmp_path, tiny_model_dir, [PREFERENCE], fmt="preference")
    train, _, stats = build_datasets(run, tokenizer)
    (example,) = list(train)
    assert trained(tokenizer, example) == ["Four.<|im_end|>"]
    assert "Five" not in tokenizer.decode(example["input_ids"])
    assert "(preference)" in stats.describe() and "rejected one is not used" in stats.describe()


def test_kto_rows_labelled_false_are_set_aside_and_counted(tmp_path, tiny_model_dir, tokenizer):
    rows = [{"messages": PROMPT + [{"role": "assistant", "content": answer}], "label": label}
            for answer, label in (("Four.", True), ("Seven.", False), ("4", True), ("Nine.", False), ("Five.", False))]
    run = run_on(tmp_path, tiny_model_dir, rows, fmt="kto", max_samples=2)
    train, _, stats = build_datasets(run, tokenizer)
    assert [trained(tokenizer, ex) for ex in train] == [["Four.<|im_end|>"], ["4<|im_end|>"]]
    # max_samples counts usable rows: reading stopped at the second row labelled true
    assert (stats.read, stats.sources[0].set_aside, stats.train) == (3, 1, 2)
    log = stats.describe()
    assert "(kto): 3 rows read, 1 labelled false set aside" in log and "rows labelled true only" in log


def test_raw_text_is_refused_by_sft_and_is_a_document_in_pt(tmp_path, tiny_model_dir, tokenizer):
    rows = [{"text": "The capital of France is Paris."}, {"text": "Two plus two is four."}]
    with pytest.raises(DataError, match="holds raw text .*stage sft") as err:
        build_examples(run_on(tmp_path, tiny_model_dir, rows, fmt="text"), tokenizer, DataStats())
    assert "stage pt" in err.value.hint
    blocks = build_examples(run_on(tmp_path, tiny_model_dir, rows, fmt="text", stage="pt", cutoff_len=512),
                            tokenizer, DataStats())[0]
    (block,) = blocks
    assert block["labels"] == block["input_ids"]
    assert tokenizer.decode(block["input_ids"]) == "The capital of France is Paris.<|im_end|>Two plus two is four.<|im_end|>"


def test_tool_conversation_in_a_template_without_tools(tokenizer):
    assert not supports_native_tools(tokenizer)  # the tiny model's ChatML, like SmolLM2's, ignores tools
    example = tokenize_row(tokenizer, parse_row(json.dumps(TOOLS_ROW), "row"))
    text = tokenizer.decode(example["input_ids"])
    assert "<|im_start|>system\nYou can call the tools below." in text
    assert '{"name": "get_weather", "description": "Weather of a city"' in text
    assert "<|im_start|>user\nTool result: sunny, 21 C<|im_end|>" in text  # a tool result is an untrained turn
    assert trained(tokenizer, example) == [
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call><|im_end|>',
        "It is sunny.<|im_end|>",
    ]


def test_tool_conversation_in_a_template_that_knows_tools(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    tokenizer.chat_template = TOOLS_TEMPLATE
    assert supports_native_tools(tokenizer)
    example = tokenize_row(tokenizer, parse_row(json.dumps(TOOLS_ROW), "row"))
    text = tokenizer.decode(example["input_ids"])
    assert text.startswith("<|im_start|>system\n# Tools\n") and '"name": "get_weather"' in text
    assert "<|im_start|>tool\nsunny, 21 C<|im_end|>" in text and "Tool result" not in text
    calls = trained(tokenizer, example)
    assert len(calls) == 2 and calls[1] == "It is sunny.<|im_end|>"
    assert calls[0].startswith("<tool_call>{") and calls[0].endswith("</tool_call><|im_end|>")
    assert json.loads(calls[0][len("<tool_call>"):-len("</tool_call><|im_end|>")]) == {
        "name": "get_weather", "arguments": {"city": "Paris"}}


def test_consecutive_tool_results_merge_into_one_user_turn(tokenizer):
    row = {"messages": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_weather", "arguments": {"city": "Rome"}}]},
        {"role": "tool", "content": "sunny"}, {"role": "tool", "content": "rain"},
        {"role": "user", "content": "And so?"}, {"role": "assistant", "content": "Take an umbrella to Rome."}]}
    example = tokenize_row(tokenizer, parse_row(json.dumps(row), "row"))
    assert "<|im_start|>user\nTool result: sunny\n\nTool result: rain\n\nAnd so?<|im_end|>" in tokenizer.decode(
        example["input_ids"])
    assert trained(tokenizer, example)[0] == (
        'Checking.\n<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\n'
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call><|im_end|>')


@pytest.mark.parametrize("line,needle", [
    ('{"messages": [{"role": "robot", "content": "x"}]}', "role 'robot'"),
    ('{"messages": [{"role": "user", "content": "x", "tool_calls": [{"name": "f"}]}]}', "only an assistant"),
    ('{"messages": [], "label": "yes"}', "'label' must be true or false"),
    ('{"prompt": "x"}', "no 'messages' list, no 'text' string"),
])
def test_malformed_rows_name_the_line_and_the_problem(tmp_path, line, needle):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n")
    with pytest.raises(DataError, match=f"bad.jsonl line 2.*{needle}"):
        list(iter_rows(path))


def test_preview_shows_each_kind_as_training_sees_it(tiny_model_dir, tokenizer, tmp_path):
    kto = [{"messages": PROMPT + [{"role": "assistant", "content": "Seven."}], "label": False},
           {"messages": PROMPT + [{"role": "assistant", "content": "Four."}], "label": True}]
    data = write_jsonl(tmp_path / "mixed.jsonl", [TOOLS_ROW, PREFERENCE, *kto, {"text": "Plain text."}])
    result = preview_dataset(tiny_model_dir, data, cutoff_len=1024, samples=10, tokenizer=tokenizer)
    assert result["rows"] == {"total": 5, "counted": 4, "capped": False, "set_aside": 1,
                              "kinds": {"tools": 1, "preference": 1, "kto": 2, "text": 1}}
    tool, preference, kto_true, text = ([s["text"] for s in sample["segments"] if s["trained"]]
                                        for sample in result["samples"])
    assert tool[-1] == "It is sunny.<|im_end|>" and tool[0].startswith("<tool_call>")
    assert preference == ["Four.<|im_end|>"] and kto_true == ["Four.<|im_end|>"]
    assert text == ["Plain text.<|im_end|>"]  # a pretraining document: every token trained, EOS last

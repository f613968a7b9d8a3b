"""The Train page's "Preview config & command": what the backend would launch, or why it would refuse."""

from app.pages.train import launch_preview_markdown
from tests.tiny_model import build_tiny_model


def test_preview_shows_the_accelerate_command_for_a_valid_run(client, tmp_path):
    model_dir = build_tiny_model(tmp_path / "tiny-llama")
    builtin = next(d for d in client.list_datasets() if d["name"] == "identity")
    text = launch_preview_markdown(client, {"base_model": str(model_dir), "datasets": [builtin["id"]]}, "en")
    assert text.startswith("✓ Valid run config")
    assert "accelerate.commands.launch" in text and "backend.engine train" not in text  # one arg per line
    assert "backend.engine" in text and "--run-dir" in text


def test_preview_explains_a_refusal(client):
    text = launch_preview_markdown(client, {"base_model": "no-such-model", "datasets": ["identity"]}, "en")
    # the message names the field in words; its one located problem says the same and is not printed twice
    assert "would refuse" in text and "unknown base model 'no-such-model'" in text
    assert text.count("unknown base model") == 1

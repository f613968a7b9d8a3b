"""Which hub files a model download fetches, and which requests it refuses before contacting anything."""

import pytest

from backend.errors import Invalid, Unavailable
from backend.hub_files import HubFile
from backend.model_download import check_request, model_id_for, select_files


def names(files):
    return [f.path for f in select_files([HubFile(p, 1) for p in files])]


def test_configs_tokenizer_and_safetensors_only():
    repo = ["config.json", "generation_config.json", "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
            "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "merges.txt",
            "vocab.json", "chat_template.jinja", "modeling_custom.py", "original/consolidated.00.pth",
            "original/params.json", ".gitattributes", "README.md", "onnx/model.onnx", "model.gguf"]
    assert names(repo) == sorted(["config.json", "generation_config.json", "model-00001-of-00002.safetensors",
                                  "model-00002-of-00002.safetensors", "model.safetensors.index.json",
                                  "tokenizer.json", "tokenizer_config.json", "tokenizer.model",
                                  "special_tokens_map.json", "merges.txt", "vocab.json", "chat_template.jinja"])


def test_bin_weights_only_without_safetensors():
    assert names(["config.json", "pytorch_model.bin", "tokenizer.json"]) == [
        "config.json", "pytorch_model.bin", "tokenizer.json"]


@pytest.mark.parametrize("repo_id", ["", "name-only", "a/b/c", "../x", "org/..", "org/na me", "-org/x"])
def test_repo_ids_that_are_not_hub_ids_are_refused(repo_id):
    with pytest.raises(Invalid) as err:
        check_request(repo_id, None, "huggingface")
    assert err.value.loc == ("body", "repo_id")


def test_revision_defaults_to_main_and_is_checked():
    assert check_request(" org/model ", None, "huggingface") == ("org/model", "main")
    assert check_request("org/model", "refs/pr/1", "huggingface") == ("org/model", "refs/pr/1")
    with pytest.raises(Invalid):
        check_request("org/model", "../../x", "huggingface")
    with pytest.raises(Unavailable, match="modelscope"):
        check_request("org/model", None, "modelscope")
    assert model_id_for("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB--SmolLM2-135M-Instruct"


@pytest.mark.parametrize("path", ["../evil.json", "a/../../evil.safetensors", "/etc/passwd.json", "a\\..\\b.json"])
def test_a_listed_path_outside_the_model_folder_refuses_the_download(path):
    with pytest.raises(Invalid, match="outside the model folder"):
        names(["config.json", "model.safetensors", path])

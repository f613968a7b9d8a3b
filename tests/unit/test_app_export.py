"""Export tab helpers: the request body for the page's choices, and the exports table."""

from app.pages.export_formats import export_options, exports_frame, files_frame


def test_export_options_match_the_api_contract():
    assert export_options("gguf", "q4_k_m", "base", "2GB", True, False) == {
        "format": "gguf", "quantization": "q4_k_m", "modelfile": True, "model_card": False}
    assert export_options("safetensors", "q8_0", "bf16", " 500MB ", False, True) == {
        "format": "safetensors", "max_shard_size": "500MB", "model_card": True, "dtype": "bf16"}
    assert "dtype" not in export_options("safetensors", "q8_0", "base", "", True, True)


def test_tables_show_sizes():
    export = {"id": "gguf-q8_0", "state": "succeeded", "bytes": 3 * 1024 ** 2, "created_at": "2026-12-01T10:00:00Z",
              "files": [{"name": "m.gguf", "bytes": 3 * 1024 ** 2}]}
    table = exports_frame([export, {"id": "gguf-f16", "state": "running"}])
    assert list(table["export"]) == ["gguf-q8_0", "gguf-f16"] and table["size"][0].startswith("3")
    assert table["size"][1] == "—"
    assert files_frame(export).values.tolist()[0][0] == "m.gguf"


def test_export_buttons_wait_for_a_run():
    """With no run picked, Prepare adapter zip / Merge / Export GGUF / Export safetensors were enabled and only said
    "pick a run" when pressed; they are greyed until a run is picked."""
    from app.pages.export import on_pick
    from app.pages.export_formats import start_buttons

    summary, adapter, merge, *_ = on_pick(None, "en", None)  # no run: the client is not asked
    assert "Pick a succeeded run" in summary
    assert adapter.interactive is False and merge.interactive is False
    assert [b["interactive"] for b in start_buttons(None)] == [False, False]
    assert [b["interactive"] for b in start_buttons("job_1")] == [True, True]

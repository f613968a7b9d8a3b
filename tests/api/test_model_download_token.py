"""A token given with a download (the Models tab's optional field) opens a gated model for that download only:
the plan (POST, so the token stays out of URLs) and the download use it, nothing echoes it, the record on disk
does not hold it, and a downloaded model says which hub repository it came from in GET /api/v1/models."""

import json

from tests.api.test_model_download import (  # noqa: F401 - api: the fixture (app without a runner, offline-safe env)
    MODEL_ID,
    REPO,
    URL,
    api,
    wait_download,
)
from tests.hub_server import HubServer

SECRET = "hf_user_secret_123"


def test_a_token_given_with_the_request_opens_a_gated_model_and_is_never_echoed(api, settings, tiny_model_dir,
                                                                                monkeypatch):
    with HubServer({REPO: tiny_model_dir}, gated={REPO: SECRET}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        refused = api.post(f"{URL}/plan", json={"repo_id": REPO, "token": "hf_wrong"})
        assert refused.status_code == 403 and "gated" in refused.json()["message"] and "hf_wrong" not in refused.text
        plan = api.post(f"{URL}/plan", json={"repo_id": REPO, "token": SECRET})
        assert plan.status_code == 200 and plan.json()["fits"] and SECRET not in plan.text
        assert api.post(URL, json={"repo_id": REPO}).status_code == 403  # no token: the next request is refused
        started = api.post(URL, json={"repo_id": REPO, "token": SECRET})
        assert started.status_code == 202 and SECRET not in started.text
        done = wait_download(api, started.json()["id"])
        assert done["state"] == "succeeded", done
        assert SECRET not in api.get(URL).text
    target = settings.models_dir / MODEL_ID
    assert SECRET not in (target / ".tunesmith-download.json").read_text()
    listed = {m["id"]: m for m in api.get("/api/v1/models").json()["data"]}
    assert listed[MODEL_ID]["repo_id"] == REPO and listed[MODEL_ID]["bundled"] is False


def test_a_token_too_long_is_refused_and_the_model_list_marks_hand_placed_folders(api, settings, tiny_model_dir):
    too_long = api.post(f"{URL}/plan", json={"repo_id": REPO, "token": "x" * 600})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["loc"] == ["body", "token"]
    assert "x" * 600 not in too_long.text
    hand_placed = settings.models_dir / "mine"
    hand_placed.mkdir(parents=True)
    for f in tiny_model_dir.iterdir():
        (hand_placed / f.name).write_bytes(f.read_bytes())
    (hand_placed / ".tunesmith-download.json").write_text(json.dumps({"plan": "not a record"}))
    listed = {m["id"]: m for m in api.get("/api/v1/models").json()["data"]}
    assert listed["mine"]["repo_id"] is None


def test_sources_say_which_hub_works_and_from_where(api, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example:8080")
    sources = {s["name"]: s for s in api.get(f"{URL}/sources").json()["data"]}
    assert sources["huggingface"] == {"name": "huggingface", "available": True,
                                      "endpoint": "http://mirror.example:8080", "reason": None}
    assert sources["modelscope"]["available"] is False and "pip install modelscope" in sources["modelscope"]["reason"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = {s["name"]: s for s in api.get(f"{URL}/sources").json()["data"]}["huggingface"]
    assert offline["available"] is False and "offline" in offline["reason"] and offline["endpoint"] is None

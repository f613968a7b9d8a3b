"""GET /api/v1/models/suggest: settings for a model's size on this machine, 404 for an unknown model."""


def test_suggestion_for_a_registered_model_and_an_unknown_one(client):
    resp = client.get("/api/v1/models/suggest", params={"model": "tiny-llama"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == "tiny-llama" and body["device"].startswith("CPU")
    assert body["settings"]["method"]["name"] == "lora" and body["settings"]["cutoff_len"] == 512
    assert body["notes"][0].endswith("(2 layers, hidden size 64).")
    job = client.post("/api/v1/jobs/preview", json={"base_model": "tiny-llama", "datasets": ["chat_demo"],
                                                    **body["settings"]})
    assert job.status_code == 200, job.text  # the suggestion is a config the API takes as it is
    resp = client.get("/api/v1/models/suggest", params={"model": "no-such-model"})
    assert resp.status_code == 404 and "tiny-llama" in resp.json()["message"]

"""POST /api/v1/datasets/identity: a personalized, editable copy of the built-in identity demo."""

import json

import pytest

from backend.datasets.builtin import BUILTIN_DATASETS

URL = "/api/v1/datasets/identity"


def test_identity_copy_is_filled_in_and_editable(api):
    resp = api.post(URL, json={"name": "Ada Bot", "author": "Acme Labs"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    rows = len(json.loads((BUILTIN_DATASETS / "identity.json").read_text(encoding="utf-8")))
    assert (body["name"], body["builtin"], body["num_rows"], body["format"]) == ("identity-ada-bot", False, rows, "alpaca")
    assert body["source_filename"] == "identity.json"

    detail = api.get(f"/api/v1/datasets/{body['id']}").json()
    text = json.dumps(detail["preview"])
    assert "Ada Bot" in text and "Acme Labs" in text and "{{" not in text
    download = api.get(f"/api/v1/datasets/{body['id']}/download").text
    assert "{{" not in download and "Tunesmith" not in download and download.count("\n") == rows

    # the built-in keeps the defaults; the copy is a normal dataset: renamable and deletable
    builtin = api.get("/api/v1/datasets/identity").json()
    assert builtin["builtin"] and "Ada Bot" not in json.dumps(builtin["preview"])
    assert api.patch(f"/api/v1/datasets/{body['id']}", json={"name": "ada-id"}).status_code == 200
    assert api.delete(f"/api/v1/datasets/{body['id']}").status_code == 204


def test_identity_dataset_name_and_clash(api):
    body = {"name": "  Zed  ", "author": "Me", "dataset_name": "my identity"}
    resp = api.post(URL, json=body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == "my identity"
    assert "Zed" in json.dumps(api.get(f"/api/v1/datasets/{resp.json()['id']}").json()["preview"])

    clash = api.post(URL, json=body)
    assert clash.status_code == 409 and "my identity" in clash.json()["message"]
    assert api.post(URL, json={"name": "Zed", "author": "Me", "dataset_name": "identity"}).status_code == 409
    assert api.post(URL, json={"name": "Zed", "author": "Me"}).status_code == 201
    assert api.post(URL, json={"name": "zed", "author": "You"}).status_code == 409  # identity-zed again
    assert len(api.get("/api/v1/datasets").json()["data"]) == 3 + 2  # three built-ins + two copies


@pytest.mark.parametrize("body", [
    {},
    {"name": "Ada"},
    {"author": "Acme"},
    {"name": "", "author": "Acme"},
    {"name": "   ", "author": "Acme"},
    {"name": "A" * 65, "author": "Acme"},
    {"name": "Ada", "author": "x" * 65},
    {"name": "{{author}}", "author": "Acme"},
    {"name": 5, "author": "Acme"},
    {"name": "Ada", "author": "Acme", "dataset_name": "../evil"},
    {"name": "Ada", "author": "Acme", "dataset_name": "ds_0123456789"},
])
def test_identity_invalid_bodies_are_422(api, body):
    before = api.get("/api/v1/datasets").json()["count"]
    resp = api.post(URL, json=body)
    assert resp.status_code == 422, resp.text
    assert api.get("/api/v1/datasets").json()["count"] == before

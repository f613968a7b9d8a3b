"""`tunesmith export` talks to a real API app: a refusal comes back as the API's own message and hint."""

import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.cli import export_job
from backend.errors import StudioError
from backend.settings import Settings


def test_refused_export_says_why_and_leaves_no_file(tmp_path):
    app = create_app(Settings.from_env(tmp_path / "home"), start_runner=False)
    out = tmp_path / "job_nope-adapter.zip"
    with TestClient(app, base_url="http://127.0.0.1") as client:
        with pytest.raises(StudioError) as refused:
            export_job(client, "/api/v1", "job_nope", merged=False, out=out)
        with pytest.raises(StudioError, match="no job with id 'job_nope'"):
            export_job(client, "/api/v1", "job_nope", merged=True, out=out)
    assert refused.value.status == 404 and refused.value.message == "no job with id 'job_nope'"
    assert refused.value.hint == "list the jobs with GET /api/v1/jobs" and not out.exists()


def test_unreachable_api_is_one_error_line_not_a_traceback(tmp_path, capsys):
    from backend.cli import main
    from backend.jobs.runner import free_port

    api = f"http://127.0.0.1:{free_port()}/api/v1"  # nothing listens there
    assert main(["export", "job_1", "--api", api, "--out", str(tmp_path / "a.zip")]) == 1
    err = capsys.readouterr().err
    assert f"error: cannot reach the studio API at {api}" in err and "hint: start it with" in err
    assert "Traceback" not in err and not (tmp_path / "a.zip").exists()

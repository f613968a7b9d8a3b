"""The Runs card names the run a continued run started from (lineage), in English and Chinese."""

from app.pages.runs import status_html


def test_runs_card_names_the_parent_run():
    job = {"id": "job_child00001", "name": "more epochs", "state": "running", "step": 3, "total_steps": 10,
           "parent_run": "job_parent0001"}
    assert "continued from <b>job_parent0001</b>" in status_html(job, [], "en")
    assert "继续自 <b>job_parent0001</b>" in status_html(job, [], "zh")
    assert "continued from" not in status_html({**job, "parent_run": None}, [], "en")

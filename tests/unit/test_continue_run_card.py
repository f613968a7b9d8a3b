"""The Runs card names the run a continued run started from (lineage), in English and Chinese."""

from app.pages.runs import status_html


def test_runs_card_names_the_parent_run():
    job = {"id": "job_child00001", "name": "more epochs", "state": "running", "step": 3, "total_steps": 10,
           "parent_run": "job_parent0001"}
    assert "continued from <b>job_parent0001</b>" in status_html(job, [], "en")
    assert "继续自 <b>job_parent0001</b>" in status_html(job, [], "zh")
    assert "continued from" not in status_html({**job, "parent_run": None}, [], "en")


def test_runs_card_shows_a_stalled_run_with_its_stack_dump():
    stall = {"idle_s": 95.0, "median_step_s": 0.5, "last_step": 3, "log_tail": "step 3 loss 2.1\n<hang>",
             "stack_dump": 'File "stall_probe.py", line 55 in _hang_for_test', "dump_problem": None}
    job = {"id": "job_a", "state": "running", "step": 3, "total_steps": 50, "stalled": stall}
    card = status_html(job, [], "en")
    assert "Stalled: no training step for" in card
    assert "last step 3" in card and "Cancel it and resume it" in card
    assert "in _hang_for_test" in card and "&lt;hang&gt;" in card  # dump shown, log escaped
    assert "已停滞" in status_html(job, [], "zh")
    assert "Stalled" not in status_html({**job, "state": "cancelled"}, [], "en")

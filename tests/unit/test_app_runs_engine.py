"""The Runs page's one-line summary of what the engine really runs with (the job's ``engine`` facts)."""

from app.pages.runs_card import engine_summary, status_html


def test_engine_facts_are_summarised_on_the_status_card() -> None:
    engine = {
        "precision": "bf16",
        "attn_implementation": "tunesmith_varlen",
        "gradient_checkpointing": False,
        "liger_kernel": True,
        "batch_tokens": 8192,
    }
    line = engine_summary(engine)
    assert line == (
        "bf16 · attention tunesmith_varlen · checkpointing off · Liger kernels · 8192 tokens per micro-batch"
    )
    card = status_html({"id": "job_x", "state": "running", "engine": engine}, [])
    assert "attention tunesmith_varlen" in card
    assert engine_summary(None) == "" and "engine" not in status_html({"id": "job_y", "state": "queued"}, [])


def test_stop_and_save_button_messages() -> None:
    import httpx

    from app.client import TunesmithClient
    from app.pages.runs import stop_message

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/job_q/stop"):
            return httpx.Response(
                409, json={"message": "job job_q has not started; cancel it instead", "errors": [], "error_count": 1}
            )
        return httpx.Response(202, json={"id": "job_r", "state": "running", "stop_requested": True})

    client = TunesmithClient("http://studio.test/api/v1", transport=httpx.MockTransport(handler))
    assert "trained so far is saved" in stop_message(client, "job_r")
    assert "cancel it instead" in stop_message(client, "job_q")
    assert "Select a running run" in stop_message(client, None)
    card = status_html({"id": "job_r", "state": "succeeded", "stopped_early_at_step": 7}, [])
    assert "stopped early" in card and "at step 7" in card


def test_a_queued_run_says_what_it_waits_for() -> None:
    card = status_html({"id": "job_q", "state": "queued", "waiting_for": "waiting for GPU 1 (job_a)"}, [])
    assert "waiting for GPU 1 (job_a)" in card
    assert "waiting" not in status_html({"id": "job_r", "state": "running", "waiting_for": "stale"}, [])

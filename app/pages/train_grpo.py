"""Stage grpo on the Train page: its settings (replies per prompt, reply length, temperature, β, loss variant) and
the rewards editor: a table of weighted rewards (the form's ``grpo.rewards``, see :mod:`app.form_grpo`) and a row
that adds one: a built-in, a finished stage-rm run's reward model, or a Python function of the studio's rewards/
folder, each picked from what the API lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from app.client import ApiError, Job, TunesmithClient
from app.form import GRPO_FIELDS
from app.form_grpo import REWARD_HEADERS, REWARD_NAMES, REWARD_SETTING, reward_row, rows_to_rewards
from app.format import error_markdown
from app.i18n import localized, t
from app.pages.runs import job_label
from app.pages.train_data import table_value
from backend.config.grpo import GrpoConfig

DEFAULT_TARGET_CHARS = 200


@dataclass
class GrpoSection:
    group: gr.Group
    rewards: gr.Dataframe


def rm_runs(jobs: list[Job], lang: str) -> list[tuple[str, str]]:
    """Choices of finished stage-rm runs (their reward models), newest first."""
    done = [j for j in jobs if j.get("state") == "succeeded" and (j.get("config") or {}).get("stage") == "rm"]
    done.sort(key=lambda j: str(j.get("created_at") or ""), reverse=True)
    return [(job_label(j, lang), str(j["id"])) for j in done if j.get("id")]


def python_reward_choices(rewards: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f"{r['function']} — {r['doc']}" if r.get("doc") else str(r["function"]), str(r["function"]))
            for r in rewards if r.get("function")]


def on_kind(client: TunesmithClient, lang: str, kind: str) -> tuple[Any, ...]:
    """Show the one setting ``kind`` takes; for a reward model or a Python reward, read what can be picked."""
    run = function = gr.Dropdown(visible=False)
    note = ""
    try:
        if kind == "reward_model":
            choices = rm_runs(client.list_jobs(), lang)
            run = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, visible=True)
            note = "" if choices else t("train.reward_no_rm_runs", lang)
        elif kind == "python":
            rewards = client.list_rewards()
            choices = python_reward_choices(rewards.get("data") or [])
            function = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, visible=True)
            note = "" if choices else t("train.reward_no_python", lang, folder=rewards.get("folder", "rewards"))
    except ApiError as exc:
        note = error_markdown(exc, lang)
    return gr.Textbox(visible=kind == "regex"), gr.Number(visible=kind == "length"), run, function, note


def add_reward(lang: str, rows: list[list] | None, kind: str, pattern: str, target: Any, run: str | None,
               function: str | None, weight: Any) -> tuple[Any, str]:
    """The table with one more reward, or unchanged and why (a reward that needs a setting without one)."""
    setting = {"regex": pattern, "length": target, "reward_model": run, "python": function}.get(kind)
    if kind in REWARD_SETTING and (setting is None or not str(setting).strip()):
        return gr.skip(), t("train.reward_needs_setting", lang, reward=t(f"reward.{kind}", lang))
    kept = [list(r) for r in rows or [] if rows_to_rewards([r])]  # drop blank rows Gradio may hold
    return rewards_table([*kept, reward_row(kind, setting, weight)], lang), ""


def remove_last(lang: str, rows: list[list] | None) -> dict[str, Any]:
    kept = [list(r) for r in rows or [] if rows_to_rewards([r])]
    return rewards_table(kept[:-1], lang)


def rewards_table(rows: list[list], lang: str) -> dict[str, Any]:
    return table_value(rows, tuple(f"train.reward_col_{h}" for h in REWARD_HEADERS), lang)


def build_grpo_section(client: TunesmithClient, fields: dict[str, Any],
                       widget: Callable[..., gr.components.Component]) -> GrpoSection:
    """The grpo group (hidden until stage grpo is picked); adds the ``grpo.*`` keys to ``fields``."""
    with gr.Group(visible=False, elem_id="train-grpo-group") as group:
        gr.Markdown(t("train.grpo_help"), elem_id="train-grpo-help")
        with gr.Row():
            for name in GRPO_FIELDS:
                fields[f"grpo.{name}"] = widget(GrpoConfig, name, f"grpo_{name}", f"grpo_{name}")
        rewards = gr.Dataframe(
            value=[],
            # Header cells are data to Gradio (its API description JSON-encodes them): the marker as text.
            headers=[str(t(f"train.reward_col_{h}")) for h in REWARD_HEADERS],
            datatype=["str", "str", "number"],
            type="array",
            interactive=True,
            label=t("train.rewards"),
            elem_id="train-grpo-rewards",
        )
        fields["grpo.rewards"] = rewards
        gr.Markdown(t("train.rewards_help"), elem_id="train-grpo-rewards-help")
        with gr.Row(equal_height=True):
            kind = gr.Dropdown(choices=[(t(f"reward.{n}"), n) for n in REWARD_NAMES], value="exact_match",
                               label=t("train.reward_kind"), elem_id="train-reward-kind", scale=2)
            pattern = gr.Textbox(label=t("train.reward_pattern"), placeholder=t("ph.reward_pattern"), visible=False,
                                 max_lines=1, elem_id="train-reward-pattern", scale=2)
            target = gr.Number(label=t("train.reward_target"), value=DEFAULT_TARGET_CHARS, precision=0, minimum=1,
                               visible=False, elem_id="train-reward-target", scale=1)
            run = gr.Dropdown(label=t("train.reward_run"), choices=[], visible=False, elem_id="train-reward-run",
                              scale=2)
            function = gr.Dropdown(label=t("train.reward_function"), choices=[], visible=False,
                                   elem_id="train-reward-function", scale=2)
            weight = gr.Number(label=t("train.reward_weight"), value=1.0, minimum=-100, maximum=100,
                               elem_id="train-reward-weight", scale=1)
            with gr.Column(scale=1, min_width=140):
                add = gr.Button(t("train.reward_add"), size="sm", elem_id="train-reward-add")
                remove = gr.Button(t("train.reward_remove"), size="sm", elem_id="train-reward-remove")
        note = gr.Markdown(elem_id="train-reward-note")
    kind.change(localized(partial(on_kind, client)), inputs=[kind], outputs=[pattern, target, run, function, note],
                show_progress="hidden")
    add.click(localized(add_reward), inputs=[rewards, kind, pattern, target, run, function, weight],
              outputs=[rewards, note], show_progress="hidden")
    remove.click(localized(remove_last), inputs=[rewards], outputs=[rewards], show_progress="hidden")
    return GrpoSection(group=group, rewards=rewards)

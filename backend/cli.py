"""``tunesmith`` command line: studio | serve | train | export."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import secrets
import sys
import time
from pathlib import Path

from backend.errors import StudioError, Unavailable
from backend.settings import BUNDLED_MODEL_ID, Settings

WILDCARD_HOSTS = ("0.0.0.0", "::", "")
MIN_TOKEN_CHARS = 16


def build_server(settings: Settings, host: str, port: int, root_path: str = ""):
    """The API at /api/v1 and the Gradio studio at /, on one FastAPI app."""
    import gradio as gr

    from app.i18n.page import PageLanguageMiddleware
    from app.main import STUDIO_CSS, build_app
    from backend.api.main import create_app

    api = create_app(settings)
    client_host = "127.0.0.1" if host in WILDCARD_HOSTS else host
    if ":" in client_host:
        client_host = f"[{client_host}]"
    blocks = build_app(f"http://{client_host}:{port}/api/v1", token=settings.token)
    app = gr.mount_gradio_app(api, blocks, path="/", css=STUDIO_CSS, root_path=root_path or None)
    app.add_middleware(PageLanguageMiddleware)  # Gradio's own strings in the chosen language (app/i18n/page.py)
    return app


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def exposure_problem(host: str, token: str | None, no_auth: bool) -> str | None:
    """Why the server must not start with these settings, or None. Loopback without a token is today's
    zero-friction start; anything reachable from the network needs a token (or an explicit --no-auth)."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        return (f"error: the access token is {len(token)} characters long; use at least {MIN_TOKEN_CHARS} "
                "(`tunesmith token` prints a new random one).")
    if token or no_auth or is_loopback(host):
        return None
    return (f"error: refusing to serve on {host or 'every address'} without an access token: anyone who can reach "
            "this machine could upload data, start jobs and download models.\n"
            "Set one with   export TUNESMITH_TOKEN=$(tunesmith token)   (or --token TOKEN), then start again;\n"
            "the browser asks for it once, API clients send 'Authorization: Bearer TOKEN'.\n"
            "(--no-auth serves without one, if something else in front of the studio checks who comes in.)")


def served_names(host: str) -> tuple[str, ...]:
    """Host names besides loopback a browser may use to reach a server bound to ``host``: the host itself, or
    for a wildcard bind this machine's name and interface addresses."""
    if is_loopback(host):
        return ()
    if host not in WILDCARD_HOSTS:
        return (host.lower(),)
    import socket

    import psutil

    names = {socket.gethostname().lower()}
    for addresses in psutil.net_if_addrs().values():
        names.update(a.address.split("%", 1)[0].lower() for a in addresses
                     if a.family in (socket.AF_INET, socket.AF_INET6))
    return tuple(sorted(names))


def serve_settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env(args.home)
    token = args.token or settings.token
    if args.no_auth:
        token = None
    return dataclasses.replace(settings, token=token,
                               allowed_hosts=(*settings.allowed_hosts, *served_names(args.host)))


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = serve_settings(args)
    problem = exposure_problem(args.host, settings.token, args.no_auth)
    if problem:
        print(problem, file=sys.stderr, flush=True)
        return 2
    app = build_server(settings, args.host, args.port, args.root_path)
    print(f"Tunesmith studio: http://{args.host}:{args.port}/  (API docs: http://{args.host}:{args.port}/docs)",
          flush=True)
    print(f"State folder: {settings.home}", flush=True)
    if settings.token:
        print("Access token required (browser: sign in once; API: 'Authorization: Bearer ...').", flush=True)
    elif args.no_auth and not is_loopback(args.host):
        print(f"WARNING: --no-auth: serving on {args.host} WITHOUT authentication. Anyone who can reach this "
              "port can upload data, start jobs and download models.", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", root_path=args.root_path)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Print a new random access token (to pass as TUNESMITH_TOKEN)."""
    print(secrets.token_urlsafe(32))
    print("Start the studio with it:  TUNESMITH_TOKEN=<the line above> tunesmith serve --host 0.0.0.0",
          file=sys.stderr)
    return 0


def prepare_bundled_model(settings: Settings) -> Path:
    """Convert SmolLM2-135M-Instruct once (in a subprocess: the server process stays torch-free)."""
    target = settings.models_dir / BUNDLED_MODEL_ID
    if (target / "config.json").is_file():
        return target
    print(f"Preparing the bundled base model {BUNDLED_MODEL_ID} (first run only, ~1 minute)...", flush=True)
    from backend.engine_process import build_engine_command, run_engine

    run_engine(build_engine_command("prepare-bundled", "--models-dir", settings.models_dir),
               what="bundled-model preparation", timeout_s=1800)
    return target


def cmd_studio(args: argparse.Namespace) -> int:
    settings = serve_settings(args)
    problem = exposure_problem(args.host, settings.token, args.no_auth)
    if problem:  # before the minute of model preparation, not after
        print(problem, file=sys.stderr, flush=True)
        return 2
    from backend.home_access import home_write_problem

    if home_write_problem(settings):  # served read-only as it is: nothing to create or prepare (create_app says so)
        return cmd_serve(args)
    settings.ensure_dirs()
    if not args.skip_model:
        prepare_bundled_model(settings)
    return cmd_serve(args)


def cmd_train(args: argparse.Namespace) -> int:
    """Run one job in the foreground through the same job path the studio uses."""
    from backend.config.llamafactory import is_llamafactory_config
    from backend.config.schema import RunConfig
    from backend.config_import import StudioCatalog, llamafactory_run_config
    from backend.datasets.builtin import BUILTIN_DATASETS
    from backend.datasets.registry import DatasetRegistry
    from backend.fsio import read_yaml
    from backend.jobs.runner import JobRunner
    from backend.jobs.service import JobService
    from backend.jobs.store import JobStore

    settings = Settings.from_env(args.home)
    settings.ensure_dirs()
    registry = DatasetRegistry(settings)
    registry.register_builtin(BUILTIN_DATASETS)
    store = JobStore(settings.db_path)
    runner = JobRunner(store, max_concurrent=1)
    service = JobService(settings, store, runner, registry)
    raw = read_yaml(args.config)
    if isinstance(raw, dict) and is_llamafactory_config(raw):  # a LLaMA-Factory training YAML (docs/llamafactory.md)
        config, warnings = llamafactory_run_config(raw, StudioCatalog(settings, registry))
        print("\n".join(f"LLaMA-Factory YAML: {w.key}: {w.msg}" for w in warnings), flush=True)
    else:
        config = RunConfig.model_validate(raw)
    job = service.submit(config)
    print(f"job {job.id} -> {job.run_dir}", flush=True)
    log_path = Path(job.run_dir) / "stdout.log"
    offset = 0
    try:
        while service.get(job.id).state in ("queued", "running"):
            runner.tick()
            if log_path.exists():
                with open(log_path, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
                    offset += len(chunk)
                sys.stdout.write(chunk.decode("utf-8", errors="replace"))
                sys.stdout.flush()
            time.sleep(0.5)
    except KeyboardInterrupt:
        service.cancel(job.id)
    final = service.get(job.id)
    print(f"\njob {final.id}: {final.state}" + (f" - {final.error} ({final.hint})" if final.error else ""))
    return 0 if final.state == "succeeded" else 1


def check_api_answer(resp) -> None:
    """A non-2xx API answer as a StudioError with the API's own message and hint (``main`` prints them)."""
    if resp.is_success:
        return
    resp.read()
    try:
        body = resp.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    error = StudioError(str(body.get("message") or f"the API answered HTTP {resp.status_code}"), hint=body.get("hint"))
    error.status = resp.status_code
    raise error


def export_job(client, base: str, job_id: str, merged: bool, out: Path) -> Path:
    """Download a job's adapter (or merged model, merging first) through the API into ``out``; nothing is left
    behind when the API refuses."""
    if merged:
        check_api_answer(client.post(f"{base}/jobs/{job_id}/merge"))
    with client.stream("GET", f"{base}/jobs/{job_id}/{'merged' if merged else 'adapter'}") as resp:
        check_api_answer(resp)
        with open(out, "wb") as fh:
            for chunk in resp.iter_bytes():
                fh.write(chunk)
    return out


def cmd_export(args: argparse.Namespace) -> int:
    import httpx

    token = os.environ.get("TUNESMITH_TOKEN", "").strip()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    out = Path(args.out or f"{args.job_id}-{'merged' if args.merged else 'adapter'}.zip")
    with httpx.Client(timeout=None, headers=headers) as client:
        try:
            print(export_job(client, args.api.rstrip("/"), args.job_id, args.merged, out))
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the studio API at {args.api}: {exc}",
                              hint="start it with `tunesmith serve` (or `make studio`), or pass --api URL") from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunesmith", description="Browser studio for fine-tuning LLMs.")
    parser.add_argument("--home", default=None, help="state folder (default $TUNESMITH_HOME or ./.tunesmith)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, helptext in (("serve", cmd_serve, "serve the API and the studio UI"),
                                 ("studio", cmd_studio, "prepare the bundled model, then serve")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--host", default=os.environ.get("TUNESMITH_HOST", "127.0.0.1"))
        p.add_argument("--port", type=int, default=int(os.environ.get("TUNESMITH_PORT", "7860")))
        p.add_argument("--token", default=None,
                       help="access token (default $TUNESMITH_TOKEN; prefer the variable: arguments show in ps)")
        p.add_argument("--no-auth", action="store_true",
                       help="serve on a non-loopback address without a token (only behind your own access control)")
        p.add_argument("--root-path", default=os.environ.get("TUNESMITH_ROOT_PATH", ""),
                       help="URL prefix a reverse proxy serves the studio under, e.g. /studio")
        if name == "studio":
            p.add_argument("--skip-model", action="store_true", help="do not prepare the bundled model")
        p.set_defaults(func=func)
    p = sub.add_parser("train", help="run one job in the foreground from a run-config YAML (see backend/config/presets)")
    p.add_argument("config", type=Path)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("token", help="print a new random access token for TUNESMITH_TOKEN")
    p.set_defaults(func=cmd_token)
    p = sub.add_parser("export", help="download a job's adapter (or merged model) from a running studio")
    p.add_argument("job_id")
    p.add_argument("--merged", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--api", default="http://127.0.0.1:7860/api/v1")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StudioError as exc:  # an engine failure or a refused request: its own words, no traceback
        print(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

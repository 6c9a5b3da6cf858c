"""``bioverify serve``: run the service; ``bioverify seal-templates``: encrypt its stored
templates."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from bioverify.errors import BioverifyError, ConfigurationError
from bioverify.settings import Settings

logger = logging.getLogger("bioverify")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bioverify", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gRPC service")
    serve.add_argument("--host", help="address to listen on (BIOVERIFY_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on, 0 = any (BIOVERIFY_PORT)")
    serve.add_argument("--data-dir", type=Path, help="where templates live (BIOVERIFY_DATA_DIR)")
    serve.add_argument("--model-dir", type=Path, help="model files (BIOVERIFY_MODEL_DIR)")
    serve.add_argument("--face-pack", help="face model pack id or 'auto' (BIOVERIFY_FACE_PACK)")
    serve.add_argument(
        "--port-file", type=Path, help="write the bound port here once serving (for scripts)"
    )
    sub.add_parser(
        "seal-templates",
        help="encrypt every stored template with the first key of TEMPLATE_KEY_FILE",
        description=(
            "Rewrite every template of the configured store encrypted with the first key of "
            "the template key file: run it once after giving a store written without keys "
            "its key file (the service may keep running with allow_unsealed_templates), and "
            "after putting a new key first in the file, before dropping the old ones."
        ),
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    overrides = {
        name: getattr(args, name)
        for name in ("host", "port", "data_dir", "model_dir", "face_pack")
        if getattr(args, name, None) is not None
    }
    return Settings.from_mapping({**_as_mapping(settings), **overrides})


def _as_mapping(settings: Settings) -> dict[str, object]:
    import dataclasses

    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


def serve(settings: Settings, port_file: Path | None = None) -> int:
    from bioverify.server.app import build

    app = build(settings)

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d received: draining", signum)
        app.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    app.start()
    if port_file is not None:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(app.port), encoding="utf-8")
        os.replace(tmp, port_file)
    app.wait()
    return 0


# Third-party loggers that log what a client sent at DEBUG or INFO: Pillow logs EXIF tag values
# and PNG chunk layouts of every image it opens. They stay at WARNING whatever LOG_LEVEL says.
QUIET_LOGGERS = ("PIL",)


def configure_logging(level: str) -> None:
    """``level`` (the LOG_LEVEL setting) for the service's log; DEBUG is the service's own
    debugging, never the payload details third-party libraries log (``QUIET_LOGGERS``)."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ConfigurationError as exc:
        print(f"bioverify: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        if args.command == "seal-templates":
            return seal_templates(settings)
        return serve(settings, args.port_file)
    except BioverifyError as exc:
        doing = "start" if args.command == "serve" else args.command
        print(f"bioverify: cannot {doing}: {exc}", file=sys.stderr)
        return 2


def seal_templates(settings: Settings) -> int:
    """Seal every stored template and subject's metadata (see ``bioverify.store.resealing``),
    cut SQLite's log of the plain ones and remove this data directory's gallery snapshots,
    which may hold their vectors in the clear or under a key being retired."""
    from bioverify.server.app import build_store, remove_snapshots_but
    from bioverify.store.resealing import reseal_templates
    from bioverify.store.sqlite_store import SqliteTemplateStore

    if not settings.template_key_file:
        raise ConfigurationError("set template_key_file (BIOVERIFY_TEMPLATE_KEY_FILE) first")
    store = build_store(settings, allow_unsealed=True)
    log_cut = True
    try:
        report = reseal_templates(store)
        if isinstance(store, SqliteTemplateStore):
            log_cut = store.erase_replaced()
    finally:
        store.close()
    counts = ", ".join(f"{n} {modality}" for modality, n in report.sealed.items())
    print(f"sealed {counts} templates ({report.gone} deleted during the run)")
    if report.unreadable:
        print(
            f"{report.unreadable} templates could not be opened and were not sealed, nor was "
            "their subject's metadata (named in the log above): delete those subjects, or "
            "enroll them again",
            file=sys.stderr,
        )
    if report.unreadable_metadata:
        print(
            f"{len(report.unreadable_metadata)} subjects' metadata could not be opened, and "
            "their templates were not sealed again (named in the log above): delete those "
            "subjects and enroll them again",
            file=sys.stderr,
        )
    if not log_cut:
        print(
            "the SQLite write-ahead log still holds the plain templates: another process has "
            "the database open; run seal-templates again once the service has written",
            file=sys.stderr,
        )
        return 1
    if remove_snapshots_but(
        settings,
        (),
        "seal-templates",
        why="they may hold templates in the clear or under a retired key",
        retried="remove it",
    ):
        return 1
    if settings.store == "redis":
        print(
            "Redis keeps the replaced values in its RDB/AOF files until they are rewritten: "
            "run BGREWRITEAOF (and BGSAVE) on the Redis server, and on its replicas"
        )
    return 1 if report.unreadable or report.unreadable_metadata else 0


if __name__ == "__main__":
    sys.exit(main())

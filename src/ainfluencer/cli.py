"""The `ainfluencer` command line."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ainfluencer import __version__

app = typer.Typer(help="AInfluencer: a self-hosted studio for openly virtual influencer characters.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
token_app = typer.Typer(help="Personal API tokens.", no_args_is_help=True)
secrets_app = typer.Typer(help="The encryption key of stored credentials.", no_args_is_help=True)
provenance_app = typer.Typer(help="AI provenance: the local C2PA signing CA.", no_args_is_help=True)
models_app = typer.Typer(help="Local models: the in-process text model and diffusers image models.",
                         no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(secrets_app, name="secrets")
app.add_typer(provenance_app, name="provenance")
app.add_typer(models_app, name="models")

console = Console(stderr=True)
out = Console()

HostOpt = Annotated[str | None, typer.Option("--host", help="bind address [env AINF_HOST]")]
PortOpt = Annotated[int | None, typer.Option("--port", help="port [env AINF_PORT]")]
DataOpt = Annotated[Path | None, typer.Option("--data-dir", help="data directory [env AINF_DATA_DIR]")]


def _apply(host: str | None = None, port: int | None = None, data_dir: Path | None = None) -> None:
    # Flags are the environment variables' equivalents, so they are applied as such: one precedence.
    for name, value in (("HOST", host), ("PORT", port), ("DATA_DIR", data_dir)):
        if value is not None:
            os.environ[f"AINF_{name}"] = str(value)


def _runtime(*, migrate: bool = False):  # type: ignore[no-untyped-def]
    from ainfluencer.config import ConfigError, Settings
    from ainfluencer.logging_setup import configure_logging
    from ainfluencer.runtime import Runtime

    try:
        settings = Settings()
        configure_logging(settings.log_level, settings.log_format)
        runtime = Runtime.build(settings)
    except ConfigError as exc:
        console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except Exception as exc:  # pydantic ValidationError and friends
        console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if migrate:
        _migrate(runtime)
    return runtime


def _migrate(runtime) -> None:  # type: ignore[no-untyped-def]
    from ainfluencer.db import migrate

    current, head = migrate.current_revision(runtime.db), migrate.head_revision()
    if current == head:
        console.print(f"[green]✓[/green] database schema is current ({head})")
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as p:
        task = p.add_task(f"Applying migrations {current or 'empty'} → {head}", total=None)
        migrate.upgrade(runtime.db)
        p.update(task, description=f"Database schema at {head}")
    console.print(f"[green]✓[/green] migrations applied ({current or 'empty'} → {head})")


def _port_busy(host: str, port: int) -> str:
    """Why ``host:port`` cannot be bound now ("" when it can), so the banner never says "Open" a busy port."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return ""  # an unresolvable host is uvicorn's to report
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # Same option uvicorn sets, so a port in TIME_WAIT after a restart does not count as busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.strerror or str(exc)
    return ""


def machine_print(text: str) -> None:
    """Print machine-readable output (JSON, keys, tokens) as it is.

    No wrapping at the terminal width and no colours, so ``| jq`` and copy-paste get one unbroken line.
    """
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _serve(roles: set[str]) -> None:
    import uvicorn
    from sqlalchemy import func, select

    from ainfluencer.app import create_app
    from ainfluencer.db.models import User

    runtime = _runtime(migrate="worker" in roles)
    settings = runtime.settings
    with runtime.db.session() as s:
        users = s.scalar(select(func.count()).select_from(User)) or 0
    url = f"http://{settings.host}:{settings.port}"
    busy = _port_busy(settings.host, settings.port)
    if busy:
        console.print(f"[bold red]Port {settings.port} on {settings.host} is busy[/bold red] ({busy}): another "
                      "program, or another AInfluencer, is listening there.\n"
                      f"Pick a free port with [bold]--port {settings.port + 1}[/bold] (or AINF_PORT), or stop the "
                      "other program.")
        raise typer.Exit(1)
    console.rule("[bold]AInfluencer " + __version__)
    console.print(f"Data directory: {settings.resolved_data_dir}")
    console.print(f"Database:       {runtime.db.engine.url.render_as_string(hide_password=True)}")
    console.print(f"Jobs:           {settings.effective_executor} executor; roles in this process: {sorted(roles)}")
    console.print(f"Mail:           {'SMTP ' + settings.smtp_host if settings.smtp_enabled else 'console + outbox'}")
    if users == 0:
        console.print(f"\n[bold green]Open {url}/signup[/bold green] to create the owner account "
                      "(the first account becomes the owner).")
        if not settings.smtp_enabled:
            console.print("The verification link is printed below in this terminal when you sign up.")
    else:
        console.print(f"\n[bold green]Open {url}/login[/bold green] to sign in. "
                      "Forgot the password? Use 'Forgot password' there (the link appears in this terminal).")
    console.print(f"API docs: {url}/docs · health: {url}/readyz · stop with Ctrl+C\n")
    uvicorn.run(
        create_app(runtime, roles=roles), host=settings.host, port=settings.port, log_config=None,
        proxy_headers=settings.trust_proxy_headers, forwarded_allow_ips="*" if settings.trust_proxy_headers else None,
        timeout_graceful_shutdown=10,
    )


@app.command()
def up(host: HostOpt = None, port: PortOpt = None, data_dir: DataOpt = None) -> None:
    """Run everything in one process: web + API, in-process worker and scheduler (migrates first)."""
    _apply(host, port, data_dir)
    _serve({"web", "worker", "scheduler"})


@app.command()
def serve(host: HostOpt = None, port: PortOpt = None, data_dir: DataOpt = None) -> None:
    """Run only the web UI and REST API (scale with replicas; run `db upgrade` first)."""
    _apply(host, port, data_dir)
    _serve({"web"})


def _wait_for_signal() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@app.command()
def worker(
    data_dir: DataOpt = None,
    concurrency: Annotated[int | None, typer.Option(help="jobs at once [env AINF_WORKER_CONCURRENCY]")] = None,
) -> None:
    """Run jobs: a Celery worker when AINF_REDIS_URL is set, else an embedded worker polling the database."""
    _apply(data_dir=data_dir)
    runtime = _runtime()
    n = concurrency or runtime.settings.worker_concurrency
    from ainfluencer.services.vault import ensure_signing

    ensure_signing(runtime.settings)  # a worker started before the web app signs too
    if runtime.settings.effective_executor == "celery":
        from ainfluencer.jobs.celery_app import run_worker

        console.print(f"Celery worker on {runtime.settings.redis_url.split('@')[-1]} with {n} threads")
        run_worker(runtime.settings, n)
        return
    from ainfluencer.jobs.embedded import EmbeddedExecutor
    from ainfluencer.runtime import instance_name

    executor = EmbeddedExecutor(runtime, instance_name("worker"), n)
    stop = _wait_for_signal()
    executor.start()
    console.print(f"Embedded worker running {n} job(s) at once; Ctrl+C to stop")
    stop.wait()
    executor.stop(timeout=30)


@app.command()
def scheduler(data_dir: DataOpt = None) -> None:
    """Run the scheduler (one active instance is elected; others wait as hot standby)."""
    _apply(data_dir=data_dir)
    from ainfluencer.jobs.scheduler import Scheduler
    from ainfluencer.runtime import instance_name

    runtime = _runtime()
    stop = _wait_for_signal()
    console.print("Scheduler running; Ctrl+C to stop")
    Scheduler(runtime, instance_name("scheduler")).run_forever(stop)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataOpt = None) -> None:
    """Apply database migrations."""
    _apply(data_dir=data_dir)
    _runtime(migrate=True)


@db_app.command("current")
def db_current(data_dir: DataOpt = None) -> None:
    """Show the schema revision of the database and of this version."""
    _apply(data_dir=data_dir)
    from ainfluencer.db import migrate

    runtime = _runtime()
    machine_print(json.dumps({"current": migrate.current_revision(runtime.db), "head": migrate.head_revision()}))


def _fail(exc: Exception) -> typer.Exit:
    message = getattr(exc, "message", str(exc))
    console.print(f"[red]Error:[/red] {message}")
    return typer.Exit(1)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="e-mail address")],
    password: Annotated[str, typer.Option(help="password (8+ characters)", prompt=True, hide_input=True)],
    owner: Annotated[bool, typer.Option("--owner", help="make this user the owner")] = False,
    name: Annotated[str, typer.Option(help="display name")] = "",
    data_dir: DataOpt = None,
) -> None:
    """Create a verified user and print it as JSON."""
    from ainfluencer.errors import AppError
    from ainfluencer.services import auth

    _apply(data_dir=data_dir)
    runtime = _runtime(migrate=True)
    try:
        with runtime.db.session() as s:
            user = auth.create_user(s, email=email, password=password, display_name=name,
                                    owner=True if owner else None, verified=True)
            result = {"id": user.id, "email": user.email, "role": user.role.value, "verified": True}
    except AppError as exc:
        raise _fail(exc) from exc
    machine_print(json.dumps(result))


@token_app.command("create")
def token_create(
    email: Annotated[str, typer.Option(help="owner of the token")],
    name: Annotated[str, typer.Option(help="a name to recognise it by")],
    scope: Annotated[list[str], typer.Option(help="read or write (repeat or comma-separate)")] = ["read"],  # noqa: B006
    expires_days: Annotated[int | None, typer.Option(help="expire after N days")] = None,
    data_dir: DataOpt = None,
) -> None:
    """Create an API token and print it (the only time it is shown)."""
    from ainfluencer.errors import AppError
    from ainfluencer.services import auth

    _apply(data_dir=data_dir)
    runtime = _runtime(migrate=True)
    scopes = [s for item in scope for s in item.split(",")]
    try:
        with runtime.db.session() as s:
            user = auth.get_user_by_email(s, email)
            if user is None:
                raise _fail(ValueError(f"no user with e-mail {email}"))
            new = auth.create_api_token(s, user=user, name=name, scopes=scopes, expires_days=expires_days, ip="cli")
            result = {"id": new.token.id, "name": new.token.name, "scopes": new.token.scope_list, "token": new.raw}
    except AppError as exc:
        raise _fail(exc) from exc
    machine_print(json.dumps(result))


@app.command("mcp")
def mcp_stdio(
    token: Annotated[str | None, typer.Option(
        "--token", envvar="AINF_MCP_TOKEN", show_default=False,
        help="API token the assistant acts with (prefer the AINF_MCP_TOKEN environment variable)")] = None,
    data_dir: DataOpt = None,
) -> None:
    """Serve the MCP server over stdio for a local assistant (Claude Desktop, CLI agents, local models)."""
    from ainfluencer.errors import AppError
    from ainfluencer.mcp.server import build_server
    from ainfluencer.services import auth

    _apply(data_dir=data_dir)
    runtime = _runtime(migrate=True)
    if not token:
        console.print("[red]No token:[/red] set AINF_MCP_TOKEN (or --token) to an API token from Settings → API "
                      "tokens or `ainfluencer token create`.")
        raise typer.Exit(2)
    try:
        with runtime.db.session() as s:
            found = auth.resolve_api_token(s, token)
            console.print(f"MCP over stdio as token “{found.name}” ({', '.join(found.scope_list)})")
    except AppError as exc:
        raise _fail(exc) from exc
    # stdout carries the protocol from here on; everything else goes to stderr.
    build_server(runtime, fixed_token=token).run("stdio")


@secrets_app.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new random AES-256 key for AINF_ENCRYPTION_KEY."""
    from ainfluencer.services.secrets import generate_key

    machine_print(generate_key())


@secrets_app.command("rotate-key")
def secrets_rotate_key(
    new_key: Annotated[str | None, typer.Option(help="base64 key to rotate to (default: generate one)")] = None,
    data_dir: DataOpt = None,
) -> None:
    """Re-encrypt every stored credential with a new key."""
    from ainfluencer.services import auth
    from ainfluencer.services.secrets import export_key, retire_old_keys, rotate_key

    _apply(data_dir=data_dir)
    runtime = _runtime(migrate=True)
    from_env = bool(runtime.settings.encryption_key.get_secret_value())
    with runtime.db.session() as s:
        ring, count = rotate_key(s, runtime.keyring, new_key)
        auth.audit(s, "secrets.key_rotated", ip="cli", rows=count, key_id=ring.active)
    retire_old_keys(ring)
    console.print(f"[green]✓[/green] re-encrypted {count} stored secret(s) with key {ring.active}")
    if from_env:
        console.print("AINF_ENCRYPTION_KEY is set: replace it with the new key below before restarting.")
        machine_print(export_key(ring))


@provenance_app.command("init")
def provenance_init(
    organization: Annotated[str, typer.Option(help="organisation in the certificates")] = "AInfluencer self-hosted",
    force: Annotated[bool, typer.Option("--force", help="replace an existing CA (old files stop verifying)")] = False,
    data_dir: DataOpt = None,
) -> None:
    """Create a local C2PA signing CA and signer in <data dir>/provenance; new media is then signed."""
    from ainfluencer.config import Settings
    from ainfluencer.media.provenance.c2pa_sign import SigningError, init_local_ca
    from ainfluencer.services.vault import provenance_dir

    _apply(data_dir=data_dir)
    directory = provenance_dir(Settings())
    try:
        creds = init_local_ca(directory, organization=organization, force=force)
    except SigningError as exc:
        raise _fail(exc) from exc
    console.print(f"[green]✓[/green] local C2PA CA created in {creds.directory}; new images and videos are signed")
    for label, path in (("CA certificate", creds.ca_cert), ("CA key", creds.ca_key),
                        ("signer certificate", creds.signer_cert), ("signer key", creds.signer_key)):
        out.print(f"{label}: {path}", soft_wrap=True, highlight=False)


@provenance_app.command("verify")
def provenance_verify(
    path: Annotated[Path, typer.Argument(help="an image or video file")], data_dir: DataOpt = None
) -> None:
    """Read a file's C2PA manifest back with the local CA as trust anchor."""
    from ainfluencer.config import Settings
    from ainfluencer.media.provenance.c2pa_sign import SigningCredentials, SigningError, verify_file
    from ainfluencer.services.vault import provenance_dir

    _apply(data_dir=data_dir)
    try:
        creds = SigningCredentials.load(provenance_dir(Settings()))
    except SigningError as exc:
        raise _fail(exc) from exc
    report = verify_file(path, trust_anchors_pem=creds.trust_anchors_pem())
    machine_print(json.dumps(report.as_dict(), indent=2))
    if not report.valid:
        raise typer.Exit(1)


@models_app.command("pull")
def models_pull(
    repo_id: Annotated[str, typer.Argument(
        help="'text' (the default local text model), 'text:<id>' (another catalogue model), a voice id "
        "(see `ainfluencer models voices`), or a Hugging Face repository id of a diffusers image model")
    ] = "stabilityai/sd-turbo",
    data_dir: DataOpt = None,
    base_url: Annotated[str | None, typer.Option(help="voices: download from this mirror of the catalogue's "
                                                      "base URL [env AINF_VOICES_BASE_URL]")] = None,
) -> None:
    """Download a model into <data dir>/models: the local text model, a voice, or a diffusers image model."""
    from ainfluencer.config import Settings

    _apply(data_dir=data_dir)
    if repo_id == "text" or repo_id.startswith("text:"):
        _pull_text_model(repo_id.partition(":")[2], Settings().resolved_data_dir)
        return
    if _is_voice(repo_id):
        _pull_voice(repo_id, Settings().resolved_data_dir, base_url)
        return
    try:
        from ainfluencer.backends.image.diffusers_local import pull_model
        from ainfluencer.backends.image.errors import BackendError
    except ImportError as exc:
        console.print(f"[red]Error:[/red] the diffusers image backend is not part of this installation ({exc})")
        raise typer.Exit(1) from exc
    models_dir = Settings().resolved_data_dir / "models"
    try:
        with _progress() as (p, task):
            path = pull_model(repo_id, models_dir=models_dir,
                              progress=lambda frac, msg: p.update(task, completed=int(frac * 100), description=msg))
    except BackendError as exc:
        console.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"[green]✓[/green] {repo_id} is in {path}")
    out.print(str(path), soft_wrap=True, highlight=False)


def _pull_text_model(model_id: str, data_dir: Path) -> None:
    from ainfluencer.backends.text.catalogue import DEFAULT_LOCAL_TEXT_MODEL, LOCAL_TEXT_MODELS
    from ainfluencer.services.model_files import FetchError, FetchProgress, pull_local_text_model, text_models_dir

    entry = LOCAL_TEXT_MODELS.get(model_id or DEFAULT_LOCAL_TEXT_MODEL)
    if entry is None:
        raise _fail(ValueError(f"unknown local text model {model_id!r}; known: {', '.join(LOCAL_TEXT_MODELS)}"))
    console.print(f"{entry.label}: {entry.repo}/{entry.filename}, about {entry.size_bytes / 1e6:,.0f} MB "
                  f"(resumes if interrupted; checked against its SHA-256)")
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeElapsedColumn(), console=console)

    with bar:
        task = bar.add_task("connecting", total=entry.size_bytes)

        def show(p: FetchProgress) -> None:
            bar.update(task, completed=p.done_bytes, total=p.total_bytes or entry.size_bytes, description=p.message)

        try:
            path = pull_local_text_model(entry.id, models_dir=text_models_dir(data_dir), progress=show)
        except FetchError as exc:
            bar.stop()
            console.print(f"[red]Error:[/red] {exc.message}")
            raise typer.Exit(1) from exc
    console.print(f"[green]✓[/green] {entry.label} is in {path}; characters with text model 'local' write with it")
    out.print(str(path), soft_wrap=True, highlight=False)


@models_app.command("status")
def models_status(data_dir: DataOpt = None) -> None:
    """Local text models on disk, whether the engine is installed, and whether a local Ollama answers."""
    import asyncio

    from ainfluencer.backends.text.catalogue import LOCAL_TEXT_MODELS
    from ainfluencer.backends.text.local import INSTALL_HINT, engine_available
    from ainfluencer.backends.text.ollama import detect_ollama
    from ainfluencer.config import Settings
    from ainfluencer.services.model_files import text_models_dir

    _apply(data_dir=data_dir)
    folder = text_models_dir(Settings().resolved_data_dir)
    table = Table("local text model", "size", "on disk")
    for m in LOCAL_TEXT_MODELS.values():
        table.add_row(f"{m.id} ({m.label})", f"{m.size_bytes / 1e6:,.0f} MB", "yes" if (folder / m.filename).is_file()
                      else f"no: ainfluencer models pull text:{m.id}")
    console.print(table)
    console.print(f"engine (llama-cpp-python): {'installed' if engine_available() else INSTALL_HINT}")
    found = asyncio.run(detect_ollama())
    console.print(f"Ollama: {found.message}" + ("; add it in Settings → Text models" if found.found else ""))


def _is_voice(name: str) -> bool:
    from ainfluencer.backends.voice.catalog import catalog

    return any(v.id == name for v in catalog())


def _pull_voice(voice_id: str, data_dir: Path, base_url: str | None) -> None:
    from ainfluencer.backends.voice.catalog import pull_voice, voices_dir
    from ainfluencer.models_fetch import FetchError, human_size

    def show(name: str, done: int, total: int | None) -> None:
        p.update(task, completed=int(done * 100 / total) if total else 0,
                 description=f"{name} {human_size(done)}" + (f" of {human_size(total)}" if total else ""))

    try:
        with _progress() as (p, task):
            path = pull_voice(voice_id, voices_dir(data_dir), base_url=base_url, progress=show)
    except FetchError as exc:
        console.print(f"[red]Error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    console.print(f"[green]✓[/green] voice {voice_id} is in {path}; choose it on a character's Voice page")
    out.print(str(path), soft_wrap=True, highlight=False)


@models_app.command("voices")
def models_voices(data_dir: DataOpt = None) -> None:
    """List the local voices of the catalogue: language, size, and whether each is installed here."""
    from ainfluencer.backends.voice.catalog import catalog, installed_voices, voices_dir
    from ainfluencer.config import Settings
    from ainfluencer.models_fetch import human_size

    _apply(data_dir=data_dir)
    installed = installed_voices(voices_dir(Settings().resolved_data_dir))
    table = Table("voice", "language", "gender", "quality", "download", "installed")
    for v in catalog():
        table.add_row(v.id, v.language, v.gender, v.quality, f"≈ {human_size(v.approx_bytes)}",
                      "yes" if v.id in installed else "")
    out.print(table)


@app.command()
def backup(
    output: Annotated[Path | None, typer.Option(help="folder for the archive (default: <data>/backups)")] = None,
    with_media: Annotated[bool, typer.Option("--with-media", help="include media files, not only their index")] = False,
    data_dir: DataOpt = None,
) -> None:
    """Snapshot the database and the media index into a portable archive."""
    from ainfluencer.services.backup import create_backup

    _apply(data_dir=data_dir)
    runtime = _runtime()
    with _progress() as (p, task):
        path = create_backup(runtime, dest_dir=output, include_media=with_media,
                             progress=lambda pct, msg: p.update(task, completed=pct, description=msg))
    out.print(str(path))


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="a backup archive made by `ainfluencer backup`")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask before replacing the data")] = False,
    clean: Annotated[bool, typer.Option(
        "--clean", help="remove NUL bytes and invalid Unicode and shorten over-long text in the rows the "
                        "check lists, instead of refusing (e.g. a SQLite backup restored into PostgreSQL)")] = False,
    data_dir: DataOpt = None,
) -> None:
    """Replace the database contents with a backup (works across SQLite and PostgreSQL).

    Every value is checked first; rows a database would refuse are listed (table, id, field) and
    nothing changes, unless --clean is given.
    """
    from ainfluencer.services.backup import restore_backup

    _apply(data_dir=data_dir)
    if not archive.exists():
        console.print(f"[red]Error:[/red] {archive} does not exist")
        raise typer.Exit(1)
    runtime = _runtime(migrate=True)
    if not yes and not typer.confirm(f"Replace all data in {runtime.db.engine.url.database} with {archive.name}?"):
        raise typer.Exit(1)
    try:
        with _progress() as (p, task):
            result = restore_backup(runtime, archive, clean=clean,
                                    progress=lambda pct, msg: p.update(task, completed=pct, description=msg))
    except ValueError as exc:
        raise _fail(exc) from exc
    cleaned = f" ({result['cleaned_values']} value(s) cleaned)" if result.get("cleaned_values") else ""
    console.print(f"[green]✓[/green] restored {archive.name}{cleaned}")


class _progress:
    def __enter__(self):  # type: ignore[no-untyped-def]
        self.p = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                          TimeElapsedColumn(), console=console)
        self.p.__enter__()
        return self.p, self.p.add_task("starting", total=100)

    def __exit__(self, *exc: object) -> None:
        self.p.__exit__(*exc)  # type: ignore[arg-type]


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


def config_table() -> Table:
    """The effective configuration as a Rich table (used by `config`)."""
    from ainfluencer.config import Settings, describe_sources

    table = Table("setting", "value", "source", "environment variable")
    for row in describe_sources(Settings()):
        table.add_row(row["name"], row["value"], row["source"], row["env"])
    return table


@app.command()
def config(data_dir: DataOpt = None) -> None:
    """Show the effective configuration and where each value came from."""
    _apply(data_dir=data_dir)
    out.print(config_table())


def main() -> None:
    """Entry point for `python -m ainfluencer`."""
    app(prog_name="ainfluencer")


if __name__ == "__main__":  # pragma: no cover
    main()

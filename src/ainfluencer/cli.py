"""The `ainfluencer` command line."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ainfluencer import __version__

app = typer.Typer(help="AInfluencer: a self-hosted studio for openly virtual influencer characters.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
token_app = typer.Typer(help="Personal API tokens.", no_args_is_help=True)
secrets_app = typer.Typer(help="The encryption key of stored credentials.", no_args_is_help=True)
provenance_app = typer.Typer(help="AI provenance: the local C2PA signing CA.", no_args_is_help=True)
models_app = typer.Typer(help="Image models for the in-process diffusers backend.", no_args_is_help=True)
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
    out.print(json.dumps({"current": migrate.current_revision(runtime.db), "head": migrate.head_revision()}))


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
    out.print(json.dumps(result))


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
    out.print(json.dumps(result))


@secrets_app.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new random AES-256 key for AINF_ENCRYPTION_KEY."""
    from ainfluencer.services.secrets import generate_key

    out.print(generate_key())


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
        out.print(export_key(ring))


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
    out.print(json.dumps(report.as_dict(), indent=2), soft_wrap=True, highlight=False)
    if not report.valid:
        raise typer.Exit(1)


@models_app.command("pull")
def models_pull(
    repo_id: Annotated[str, typer.Argument(help="Hugging Face repository id")] = "stabilityai/sd-turbo",
    data_dir: DataOpt = None,
) -> None:
    """Download a diffusers model into <data dir>/models for the in-process backend (needs internet)."""
    from ainfluencer.config import Settings

    _apply(data_dir=data_dir)
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

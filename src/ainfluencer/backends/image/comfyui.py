"""ComfyUI: API-format workflow templates, face reference via IP-Adapter or InstantID, websocket progress.

One generation, as ComfyUI's own API documents it:
    GET  /object_info              the node types the server has (checked against the workflow)
    POST /upload/image             the face reference / init image (multipart; name by content hash)
    WS   /ws?clientId=ID           opened *before* queueing so no message is missed
    POST /prompt                   {"prompt": workflow, "client_id": ID} -> {"prompt_id": ...}
    ...  status, execution_start, execution_cached, executing, progress, executed, then
         ``executing`` with node null and/or ``execution_success`` (either one ends the wait),
         or execution_error / execution_interrupted
    GET  /history/{prompt_id}      outputs of the finished prompt (polled briefly: ComfyUI sends
                                   ``execution_success`` before it writes the history entry)
    GET  /view?filename=&subfolder=&type=   each output image
When the websocket cannot be opened or drops, the backend polls ``/history`` instead.

Templates live in ``workflows/*.json`` (API format). Nodes are found by ``_meta.title``; the
titles below are the placeholders this module fills, so a user's own workflow exported from
ComfyUI works once its nodes carry the same titles:
    ainf.checkpoint  ckpt_name          ainf.positive / ainf.negative  text
    ainf.latent      width, height, batch_size
    ainf.sampler     seed | noise_seed, steps, cfg, denoise
    ainf.face_image  image (uploaded face reference)    ainf.face_adapter  weight
    ainf.init_image  image (uploaded init image)        ainf.init_scale    width, height
    ainf.save        filename_prefix
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

import anyio
import httpx
from pydantic import SecretStr

from ainfluencer.backends.image.base import (
    GeneratedImage,
    HttpImageBackend,
    ImageRequest,
    Progress,
    as_png,
    read_reference,
)
from ainfluencer.backends.image.errors import (
    BackendError,
    BackendPermanentError,
    BackendProtocolError,
    BackendTransientError,
    BackendUnavailable,
    MissingNodes,
    ModelMissing,
)

log = logging.getLogger(__name__)

FaceMethod = Literal["ipadapter", "instantid"]

WORKFLOWS: dict[str, str] = {
    "txt2img": "txt2img_sdxl",
    "ipadapter": "txt2img_ipadapter_face",
    "instantid": "txt2img_instantid",
    "img2img": "img2img_sdxl",
}
REQUIRED_ROLES: dict[str, tuple[str, ...]] = {
    "txt2img": ("ainf.checkpoint", "ainf.positive", "ainf.latent", "ainf.sampler"),
    "ipadapter": ("ainf.checkpoint", "ainf.positive", "ainf.latent", "ainf.sampler", "ainf.face_image"),
    "instantid": ("ainf.checkpoint", "ainf.positive", "ainf.latent", "ainf.sampler", "ainf.face_image"),
    "img2img": ("ainf.checkpoint", "ainf.positive", "ainf.sampler", "ainf.init_image"),
}
# which custom-node pack provides a node type, for the "install X" message
NODE_PACKS: dict[str, str] = {
    "IPAdapterUnifiedLoader": "ComfyUI_IPAdapter_plus",
    "IPAdapterAdvanced": "ComfyUI_IPAdapter_plus",
    "IPAdapter": "ComfyUI_IPAdapter_plus",
    "IPAdapterModelLoader": "ComfyUI_IPAdapter_plus",
    "InstantIDModelLoader": "ComfyUI_InstantID",
    "InstantIDFaceAnalysis": "ComfyUI_InstantID",
    "ApplyInstantID": "ComfyUI_InstantID",
    "ApplyInstantIDAdvanced": "ComfyUI_InstantID",
}
UPLOAD_SUBFOLDER = "ainfluencer"
OBJECT_INFO_TTL_S = 300.0
HISTORY_GRACE_S = 15.0
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


def load_workflow(name: str, *, directory: Path | None = None) -> dict[str, Any]:
    """An API-format workflow by name: ``directory/NAME.json`` when it exists, else the shipped template."""
    if directory is not None:
        own = Path(directory) / f"{name}.json"
        if own.is_file():
            return _parse_workflow(own.read_text(encoding="utf-8"), str(own))
    shipped = resources.files("ainfluencer.backends.image").joinpath("workflows", f"{name}.json")
    if not shipped.is_file():
        raise BackendUnavailable(f"no workflow template named {name!r}", backend=ComfyUIBackend.name)
    return _parse_workflow(shipped.read_text(encoding="utf-8"), name)


def _parse_workflow(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BackendPermanentError(f"workflow {where} is not valid JSON: {exc}", backend="comfyui") from exc
    if not isinstance(data, dict) or not all(isinstance(n, dict) and "class_type" in n for n in data.values()):
        raise BackendPermanentError(
            f"workflow {where} is not in ComfyUI's API format (export it with 'Save (API Format)')", backend="comfyui"
        )
    return data


def nodes_by_title(workflow: Mapping[str, Any], title: str) -> list[str]:
    """Ids of the nodes whose ``_meta.title`` is ``title``."""
    return [nid for nid, node in workflow.items() if (node.get("_meta") or {}).get("title") == title]


def fill_workflow(
    template: Mapping[str, Any], values: Mapping[str, Mapping[str, Any]], *, required: Iterable[str] = ()
) -> dict[str, Any]:
    """A copy of ``template`` with each titled node's inputs set from ``values[title]``.

    Only inputs the node has are set, and never one wired to another node (a link). A title in
    ``required`` that no node carries is an error: the workflow cannot be driven.
    """
    workflow = copy.deepcopy(dict(template))
    missing = [role for role in required if not nodes_by_title(workflow, role)]
    if missing:
        raise BackendPermanentError(
            f"the workflow has no node titled {', '.join(missing)}; give those nodes that title", backend="comfyui"
        )
    for role, inputs in values.items():
        for nid in nodes_by_title(workflow, role):
            node_inputs = workflow[nid].setdefault("inputs", {})
            for key, value in inputs.items():
                if value is None or key not in node_inputs or isinstance(node_inputs[key], list):
                    continue
                node_inputs[key] = value
    return workflow


def _combo_options(spec: Any) -> list[str] | None:
    """Choices of a combo input in /object_info (old ``[[...], {...}]`` and new ``["COMBO", {"options"}]``)."""
    if not isinstance(spec, list) or not spec:
        return None
    first = spec[0]
    if isinstance(first, list):
        return [str(x) for x in first]
    if first == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        return [str(x) for x in spec[1].get("options") or []]
    return None


def _input_options(object_info: Mapping[str, Any], class_type: str, key: str) -> list[str] | None:
    info = object_info.get(class_type)
    if not isinstance(info, dict):
        return None
    inputs = info.get("input") or {}
    for section in ("required", "optional"):
        spec = (inputs.get(section) or {}).get(key)
        if spec is not None:
            return _combo_options(spec)
    return None


def _match_model(wanted: str, options: list[str]) -> str | None:
    if wanted in options:
        return wanted
    stem = wanted.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
    for option in options:
        name = option.replace("\\", "/").rsplit("/", 1)[-1]
        if name.rsplit(".", 1)[0].lower() == stem or name.lower() == wanted.lower():
            return option
    return None


def _missing_nodes_error(missing: Iterable[str]) -> MissingNodes:
    missing = sorted(set(missing))
    packs = sorted({NODE_PACKS[n] for n in missing if n in NODE_PACKS})
    if packs:
        fix = f"install {' and '.join(packs)} into ComfyUI/custom_nodes (or with ComfyUI-Manager) and restart ComfyUI"
    else:
        fix = "update ComfyUI (or install the custom nodes this workflow uses) and restart it"
    return MissingNodes(missing, fix=fix, backend=ComfyUIBackend.name)


class ComfyUIBackend(HttpImageBackend):
    """A ComfyUI server (local or on the user's GPU box) driven through its HTTP + websocket API."""

    name: ClassVar[str] = "comfyui"
    label: ClassVar[str] = "ComfyUI"
    paid: ClassVar[bool] = False
    local: ClassVar[bool] = True
    supports_face_reference: ClassVar[bool] = True
    supports_img2img: ClassVar[bool] = True
    supports_negative_prompt: ClassVar[bool] = True
    supports_seed: ClassVar[bool] = True
    max_size: ClassVar[tuple[int, int]] = (2048, 2048)
    max_batch: ClassVar[int] = 8
    default_base_url: ClassVar[str] = "http://127.0.0.1:8188"
    default_timeout: ClassVar[float] = 30.0
    default_generation_timeout: ClassVar[float] = 900.0

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: SecretStr | str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float | None = None,
        generation_timeout: float | None = None,
        model: str | None = None,
        face_method: FaceMethod = "ipadapter",
        workflows_dir: Path | str | None = None,
        poll_interval: float = 1.0,
        use_websocket: bool = True,
    ) -> None:
        super().__init__(
            base_url=base_url,
            api_key=api_key,
            client=client,
            timeout=timeout,
            generation_timeout=generation_timeout,
            model=model,
        )
        if face_method not in ("ipadapter", "instantid"):
            raise ValueError("face_method must be 'ipadapter' or 'instantid'")
        self.face_method: FaceMethod = face_method
        self.workflows_dir = Path(workflows_dir) if workflows_dir else None
        self.poll_interval = poll_interval
        self.use_websocket = use_websocket
        self._object_info_cache: tuple[float, dict[str, Any]] | None = None

    def _headers(self) -> dict[str, str]:
        headers = super()._headers()
        if self._key():  # ComfyUI behind an authenticating reverse proxy
            headers["authorization"] = f"Bearer {self._key()}"
        return headers

    def _error_detail(self, body: Any) -> str:
        if not isinstance(body, dict):
            return ""
        parts: list[str] = []
        err = body.get("error")
        if isinstance(err, dict):
            parts.append(" ".join(str(err.get(k) or "") for k in ("message", "details")).strip())
        elif isinstance(err, str):
            parts.append(err)
        node_errors = body.get("node_errors")
        if isinstance(node_errors, dict):
            for nid, info in node_errors.items():
                if not isinstance(info, dict):
                    continue
                for e in info.get("errors") or []:
                    if isinstance(e, dict):
                        detail = f"{e.get('message', '')}: {e.get('details', '')}".strip(": ")
                        parts.append(f"node {nid} ({info.get('class_type', '?')}): {detail}")
        return "; ".join(p for p in parts if p)

    # --- server facts ---------------------------------------------------------------------------------

    async def object_info(self, *, refresh: bool = False) -> dict[str, Any]:
        """The server's node types (cached for a few minutes; ``refresh`` re-reads them)."""
        now = time.monotonic()
        if not refresh and self._object_info_cache and now - self._object_info_cache[0] < OBJECT_INFO_TTL_S:
            return self._object_info_cache[1]
        info = await self._json_object("GET", "/object_info")
        self._object_info_cache = (now, info)
        return info

    async def missing_nodes(self, workflow: Mapping[str, Any]) -> list[str]:
        """Node types the workflow uses that the server does not have (re-checked once before answering)."""
        needed = {str(node["class_type"]) for node in workflow.values()}
        info = await self.object_info()
        missing = needed - set(info)
        if missing:
            info = await self.object_info(refresh=True)  # maybe installed since we last looked
            missing = needed - set(info)
        return sorted(missing)

    async def face_support(self, method: FaceMethod | None = None) -> tuple[bool, str]:
        """Whether the server can wire a face reference with ``method``, and if not, the fix; never raises."""
        kind = method or self.face_method
        try:
            missing = await self.missing_nodes(self._template(kind))
        except BackendError as exc:
            return False, f"{exc.kind}: {exc.message}"
        if missing:
            return False, _missing_nodes_error(missing).message
        return True, ""

    async def list_models(self) -> list[str]:
        """Checkpoint file names in ComfyUI's models/checkpoints."""
        try:
            data = await self._json("GET", "/models/checkpoints")
        except BackendPermanentError as exc:
            if exc.status != 404:
                raise
            data = None  # older ComfyUI: read the loader's choices instead
        if isinstance(data, list):
            return [str(x) for x in data]
        options = _input_options(await self.object_info(), "CheckpointLoaderSimple", "ckpt_name")
        if options is None:
            raise BackendProtocolError("ComfyUI lists no checkpoint loader choices", backend=self.name)
        return options

    async def available(self) -> tuple[bool, str]:
        """Whether ComfyUI answers and has a checkpoint; never raises."""
        try:
            stats = await self._json_object("GET", "/system_stats")
            info = await self.object_info(refresh=True)
            missing = await self.missing_nodes(self._template("txt2img"))
        except BackendError as exc:
            return False, (
                f"ComfyUI does not answer at {self.base_url} ({exc.message}); start it "
                "(python main.py --listen 127.0.0.1 --port 8188) or fix the URL in Settings"
            )
        if missing:
            return False, _missing_nodes_error(missing).message
        checkpoints = _input_options(info, "CheckpointLoaderSimple", "ckpt_name") or []
        if not checkpoints:
            return False, "ComfyUI has no checkpoints: put a .safetensors model into ComfyUI/models/checkpoints"
        version = (stats.get("system") or {}).get("comfyui_version") or ""
        return True, f"ComfyUI {version} at {self.base_url}; {len(checkpoints)} checkpoints".replace("  ", " ")

    # --- generation -----------------------------------------------------------------------------------

    def _template(self, kind: str) -> dict[str, Any]:
        return load_workflow(WORKFLOWS[kind], directory=self.workflows_dir)

    def _kind_for(self, req: ImageRequest) -> str:
        if req.face_reference is not None and req.init_image is not None:
            raise BackendPermanentError(
                "ComfyUI workflows take a face reference or an init image, not both in one call", backend=self.name
            )
        if req.face_reference is not None:
            return self.face_method
        if req.init_image is not None:
            return "img2img"
        return "txt2img"

    async def _resolve_checkpoint(self, req: ImageRequest, template: Mapping[str, Any]) -> str:
        nid = nodes_by_title(template, "ainf.checkpoint")[0]
        node = template[nid]
        options = _input_options(await self.object_info(), str(node["class_type"]), "ckpt_name")
        wanted = req.model or self.model
        if options is None:  # a loader we do not know the choices of: trust the name
            return wanted or str(node["inputs"].get("ckpt_name", ""))
        if wanted:
            found = _match_model(wanted, options)
            if found is None:
                options = _input_options(await self.object_info(refresh=True), str(node["class_type"]), "ckpt_name")
                found = _match_model(wanted, options or [])
            if found is None:
                raise ModelMissing(
                    wanted,
                    backend=self.name,
                    message=f"checkpoint {wanted!r} is not in ComfyUI/models/checkpoints ({len(options or [])} there)",
                )
            return found
        if not options:
            raise BackendUnavailable(
                "ComfyUI has no checkpoints: put a .safetensors model into ComfyUI/models/checkpoints",
                backend=self.name,
            )
        default = str(node["inputs"].get("ckpt_name", ""))
        return default if default in options else options[0]

    async def upload_image(self, path: Path, *, what: str) -> str:
        """Upload a local image into ComfyUI's input folder; returns the value a LoadImage node takes."""
        data = await read_reference(path, backend=self.name, what=what)
        suffix = path.suffix.lower() if path.suffix.lower() in _IMAGE_TYPES else ".png"
        # named by content: the same face uploaded twice is one file on the server
        filename = f"{what.split()[0]}-{hashlib.sha256(data).hexdigest()[:20]}{suffix}"
        body = await self._json_object(
            "POST",
            "/upload/image",
            files={"image": (filename, data, _IMAGE_TYPES[suffix])},
            data={"overwrite": "true", "type": "input", "subfolder": UPLOAD_SUBFOLDER},
        )
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise BackendProtocolError("/upload/image answered without a file name", backend=self.name)
        subfolder = body.get("subfolder") or ""
        return f"{subfolder}/{name}" if subfolder else name

    async def _generate(self, req: ImageRequest, progress: Progress) -> list[GeneratedImage]:
        kind = self._kind_for(req)
        template = self._template(kind)
        missing = await self.missing_nodes(template)
        if missing:
            raise _missing_nodes_error(missing)
        checkpoint = await self._resolve_checkpoint(req, template)
        face_name = init_name = None
        if req.face_reference is not None:
            face_name = await self.upload_image(req.face_reference, what="face reference")
        if req.init_image is not None:
            init_name = await self.upload_image(req.init_image, what="init image")
        progress(0.03, "uploaded" if face_name or init_name else "prepared")
        width, height = req.width - req.width % 8, req.height - req.height % 8
        base_seed = req.seed if req.seed is not None else 0
        images: list[GeneratedImage] = []
        # one prompt per image, seed + i: each image can be regenerated alone from its recorded seed
        for i in range(req.batch):
            seed = base_seed + i
            values: dict[str, dict[str, Any]] = {
                "ainf.checkpoint": {"ckpt_name": checkpoint},
                "ainf.positive": {"text": req.prompt},
                "ainf.negative": {"text": req.negative_prompt},
                "ainf.latent": {"width": width, "height": height, "batch_size": 1},
                "ainf.init_scale": {"width": width, "height": height},
                "ainf.sampler": {
                    "seed": seed,
                    "noise_seed": seed,
                    "steps": req.steps,
                    "cfg": req.guidance,
                    "denoise": req.strength if kind == "img2img" else None,
                },
                "ainf.face_image": {"image": face_name},
                "ainf.init_image": {"image": init_name},
                # ApplyInstantID takes weights up to 1.0; IP-Adapter goes higher
                "ainf.face_adapter": {
                    "weight": (min(req.face_weight, 1.0) if kind == "instantid" else req.face_weight)
                    if face_name
                    else None
                },
                "ainf.save": {"filename_prefix": f"ainfluencer/{seed}"},
            }
            workflow = fill_workflow(template, values, required=REQUIRED_ROLES[kind])
            part = progress.span(0.05 + 0.9 * i / req.batch, 0.05 + 0.9 * (i + 1) / req.batch)
            prompt_id, files = await self._run_prompt(workflow, part, label=f"image {i + 1}/{req.batch}")
            sampler = workflow[nodes_by_title(workflow, "ainf.sampler")[0]]["inputs"]
            for f in files:
                png, w, h = await self._fetch_image(f)
                meta = {
                    "workflow": WORKFLOWS[kind],
                    "prompt_id": prompt_id,
                    "steps": sampler.get("steps"),
                    "cfg": sampler.get("cfg"),
                    "sampler": sampler.get("sampler_name"),
                    "scheduler": sampler.get("scheduler"),
                    "comfy_file": f.get("filename"),
                }
                if face_name:
                    meta.update(face_method=kind, face_image=face_name, face_weight=req.face_weight)
                if init_name:
                    meta.update(init_image=init_name, strength=req.strength)
                images.append(
                    GeneratedImage(
                        png_bytes=png, seed=seed, width=w, height=h, model=checkpoint, backend=self.name, meta=meta
                    )
                )
        return images

    async def _queue(self, workflow: Mapping[str, Any], client_id: str) -> str:
        body = await self._json_object("POST", "/prompt", json_body={"prompt": workflow, "client_id": client_id})
        prompt_id = body.get("prompt_id")
        if not isinstance(prompt_id, str) or not prompt_id:
            if body.get("node_errors") or body.get("error"):
                raise BackendPermanentError(
                    self._error_detail(body) or "ComfyUI refused the workflow", backend=self.name
                )
            raise BackendProtocolError("/prompt answered without a prompt_id", backend=self.name)
        return prompt_id

    def _ws_url(self, client_id: str) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit(
            (scheme, parts.netloc, parts.path.rstrip("/") + "/ws", urlencode({"clientId": client_id}), "")
        )

    async def _open_ws(self, client_id: str, stack: AsyncExitStack) -> Any | None:
        """The websocket choke point: open ``/ws`` for this client id, or None (then we poll)."""
        if not self.use_websocket:
            return None
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        headers = {"authorization": f"Bearer {self._key()}"} if self._key() else None
        try:
            return await stack.enter_async_context(
                connect(
                    self._ws_url(client_id),
                    open_timeout=self.timeout.connect,
                    close_timeout=2,
                    max_size=64 * 1024 * 1024,  # preview frames can be large; we drop them unread
                    additional_headers=headers,
                )
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            log.info("comfyui websocket unavailable (%s); polling /history instead", type(exc).__name__)
            return None

    async def _run_prompt(
        self, workflow: Mapping[str, Any], progress: Progress, *, label: str
    ) -> tuple[str, list[dict[str, Any]]]:
        """Queue one workflow, follow it to the end, return its prompt id and output image records."""
        client_id = uuid.uuid4().hex
        executed: list[dict[str, Any]] = []
        prompt_id = ""
        async with AsyncExitStack() as stack:
            ws = await self._open_ws(client_id, stack)
            prompt_id = await self._queue(workflow, client_id)
            progress(0.02, f"{label}: queued")
            try:
                with anyio.fail_after(self.generation_timeout):
                    finished = False
                    if ws is not None:
                        finished = await self._follow_ws(ws, prompt_id, workflow, progress, executed, label=label)
                    entry = await self._await_history(prompt_id, wait_for_run=not finished)
            except TimeoutError:
                with anyio.CancelScope(shield=True):
                    await self._abandon(prompt_id)
                raise BackendTransientError(
                    f"ComfyUI did not finish within {self.generation_timeout:g}s (prompt removed from the queue)",
                    backend=self.name,
                ) from None
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await self._abandon(prompt_id)
                raise
        progress(0.97, f"{label}: fetching")
        files = self._output_images(entry, workflow) or [f for f in executed if f.get("type") == "output"]
        if not files:
            raise BackendPermanentError(
                "the workflow finished without saving an image (does it end in a SaveImage node?)", backend=self.name
            )
        return prompt_id, files

    async def _follow_ws(
        self,
        ws: Any,
        prompt_id: str,
        workflow: Mapping[str, Any],
        progress: Progress,
        executed: list[dict[str, Any]],
        *,
        label: str,
    ) -> bool:
        """Read websocket messages until our prompt ends; False when the socket dropped first."""
        from websockets.exceptions import ConnectionClosed

        total = max(1, len(workflow))
        done_nodes: set[str] = set()
        started = False
        try:
            async for raw in ws:
                if isinstance(raw, bytes):  # binary preview frames
                    continue
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(msg, dict):
                    continue
                kind, data = msg.get("type"), msg.get("data") or {}
                if not isinstance(data, dict):
                    continue
                pid = data.get("prompt_id")
                if pid is not None and pid != prompt_id:
                    continue  # another prompt on a shared server
                if kind == "status":
                    remaining = ((data.get("status") or {}).get("exec_info") or {}).get("queue_remaining")
                    if not started and isinstance(remaining, int) and remaining > 1:
                        progress(0.02, f"{label}: waiting in the ComfyUI queue ({remaining - 1} ahead)")
                elif kind == "execution_start":
                    started = True
                    progress(0.05, f"{label}: started")
                elif kind == "execution_cached":
                    started = True
                    done_nodes.update(str(n) for n in data.get("nodes") or [])
                    progress(0.05 + 0.85 * len(done_nodes) / total, f"{label}: {len(done_nodes)} nodes cached")
                elif kind == "executing":
                    node = data.get("node")
                    if node is None:
                        if pid == prompt_id or started:
                            return True
                        continue
                    started = True
                    done_nodes.add(str(node))
                    class_type = (workflow.get(str(node)) or {}).get("class_type", node)
                    progress(0.05 + 0.85 * (len(done_nodes) - 1) / total, f"{label}: running {class_type}")
                elif kind == "progress":
                    value, maximum = data.get("value"), data.get("max")
                    if isinstance(value, int | float) and isinstance(maximum, int | float) and maximum > 0:
                        progress(0.1 + 0.8 * value / maximum, f"{label}: step {int(value)}/{int(maximum)}")
                elif kind == "executed":
                    output = data.get("output") or {}
                    found = output.get("images") if isinstance(output, dict) else None
                    for img in found if isinstance(found, list) else []:
                        if isinstance(img, dict):
                            executed.append({**img, "node": str(data.get("node"))})
                elif kind == "execution_success":
                    return True
                elif kind == "execution_error":
                    raise self._execution_error(data)
                elif kind == "execution_interrupted":
                    raise BackendTransientError(
                        f"the prompt was interrupted on the ComfyUI server (at {data.get('node_type', '?')})",
                        backend=self.name,
                    )
        except ConnectionClosed:
            pass
        log.info("comfyui websocket closed before prompt %s ended; polling /history", prompt_id)
        return False

    def _execution_error(self, data: Mapping[str, Any]) -> BackendError:
        etype = str(data.get("exception_type") or "error")
        emsg = " ".join(str(data.get("exception_message") or "").split())
        where = data.get("node_type") or data.get("node_id") or "a node"
        message = f"{where} failed: {etype}: {emsg}"[:400]
        if "OutOfMemory" in etype or "out of memory" in emsg.lower() or "Interrupt" in etype:
            return BackendTransientError(message, backend=self.name)
        return BackendPermanentError(message, backend=self.name)

    async def _await_history(self, prompt_id: str, *, wait_for_run: bool) -> dict[str, Any]:
        """The history entry of a prompt: a short grace period after a completion signal, else until it ends."""
        deadline = None if wait_for_run else time.monotonic() + HISTORY_GRACE_S
        delay = self.poll_interval if wait_for_run else 0.05
        while True:
            body = await self._json_object("GET", f"/history/{prompt_id}")
            entry = body.get(prompt_id)
            if isinstance(entry, dict):
                status = entry.get("status") or {}
                if status.get("status_str") == "error":
                    raise self._history_error(status)
                if status.get("completed") or entry.get("outputs"):
                    return entry
            if deadline is not None and time.monotonic() > deadline:
                raise BackendTransientError(
                    f"ComfyUI reported prompt {prompt_id} finished but /history has no entry for it",
                    backend=self.name,
                )
            await anyio.sleep(delay)
            if not wait_for_run:
                delay = min(delay * 2, 1.0)

    def _history_error(self, status: Mapping[str, Any]) -> BackendError:
        for item in status.get("messages") or []:
            if isinstance(item, list) and len(item) == 2 and item[0] == "execution_error" and isinstance(item[1], dict):
                return self._execution_error(item[1])
            if isinstance(item, list) and len(item) == 2 and item[0] == "execution_interrupted":
                return BackendTransientError("the prompt was interrupted on the ComfyUI server", backend=self.name)
        return BackendPermanentError("the prompt failed on the ComfyUI server", backend=self.name)

    def _output_images(self, entry: Mapping[str, Any], workflow: Mapping[str, Any]) -> list[dict[str, Any]]:
        outputs = entry.get("outputs") or {}
        if not isinstance(outputs, dict):
            return []
        save_nodes = set(nodes_by_title(workflow, "ainf.save"))
        ordered = sorted(outputs.items(), key=lambda kv: (kv[0] not in save_nodes, kv[0]))
        files: list[dict[str, Any]] = []
        for nid, out in ordered:
            if save_nodes and nid not in save_nodes:
                continue
            found = out.get("images") if isinstance(out, dict) else None
            for img in found if isinstance(found, list) else []:
                if isinstance(img, dict) and img.get("filename") and img.get("type", "output") == "output":
                    files.append({**img, "node": nid})
        return files

    async def _fetch_image(self, record: Mapping[str, Any]) -> tuple[bytes, int, int]:
        params = {
            "filename": str(record.get("filename")),
            "subfolder": str(record.get("subfolder") or ""),
            "type": str(record.get("type") or "output"),
        }
        response = await self._send("GET", "/view", params=params)
        return as_png(response.content, backend=self.name)

    async def _abandon(self, prompt_id: str) -> None:
        """Best effort after a timeout or cancel: drop the prompt from the queue, interrupt it if running."""
        try:
            with anyio.fail_after(5):
                queue = await self._json_object("GET", "/queue")
                running = [q for q in queue.get("queue_running") or [] if isinstance(q, list) and prompt_id in q]
                await self._send("POST", "/queue", json_body={"delete": [prompt_id]})
                if running:
                    await self._send("POST", "/interrupt", json_body={"prompt_id": prompt_id})
        except (BackendError, TimeoutError) as exc:
            log.info("comfyui: could not withdraw prompt %s: %s", prompt_id, exc)

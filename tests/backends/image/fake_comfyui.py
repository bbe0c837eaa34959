"""A local server speaking ComfyUI's HTTP + websocket API, and a tiny PNG writer the other fakes share.

Routes: /system_stats, /object_info, /models/checkpoints, /upload/image, /prompt, /ws?clientId=,
/history/{id}, /view, /queue, /interrupt. Queueing a prompt starts a background "execution" that
sends the websocket messages ComfyUI sends and writes the history entry. ``state.variant`` picks
how the run ends:

    both            execution_success, then the history entry, then executing(node=null) - today's ComfyUI
    executing_null  history entry, then executing(node=null) only - older ComfyUI, no execution_success
    success_only    execution_success only; the history entry appears ``history_delay`` s later
    cached          every node reported in execution_cached (no executing/progress), then both signals
    error           execution_error from the KSampler (``error_type`` / ``error_message``)
    interrupted     execution_interrupted at the KSampler
    ws_drop         the server closes the websocket mid-run; the run still finishes (history only)
    hang            the KSampler never finishes

Messages for another prompt id and binary preview frames are mixed in, as on a shared server.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid RGB PNG of one colour, written without Pillow."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b"")
    )


def seed_colour(seed: int) -> tuple[int, int, int]:
    return (seed * 37 % 256, seed * 91 % 256, seed * 173 % 256)


BASE_NODES = [
    "CheckpointLoaderSimple",
    "CLIPTextEncode",
    "EmptyLatentImage",
    "KSampler",
    "VAEDecode",
    "VAEEncode",
    "SaveImage",
    "LoadImage",
    "ImageScale",
    "ControlNetLoader",
]
IPADAPTER_NODES = ["IPAdapterUnifiedLoader", "IPAdapterAdvanced", "IPAdapter", "IPAdapterModelLoader"]
INSTANTID_NODES = ["InstantIDModelLoader", "InstantIDFaceAnalysis", "ApplyInstantID", "ApplyInstantIDAdvanced"]


@dataclass
class ComfyState:
    variant: str = "both"
    ipadapter: bool = True
    instantid: bool = True
    new_combo_format: bool = False
    models_endpoint: bool = True
    checkpoints: list[str] = field(
        default_factory=lambda: ["sd_xl_base_1.0.safetensors", "SDXL/juggernautXL_v9.safetensors"]
    )
    steps: int = 4
    history_delay: float = 0.3
    error_type: str = "RuntimeError"
    error_message: str = "Reference Image: No face detected."
    uploads: dict[str, bytes] = field(default_factory=dict)
    upload_forms: list[dict[str, str]] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    queue_posts: list[Any] = field(default_factory=list)
    interrupts: list[Any] = field(default_factory=list)
    sockets: dict[str, WebSocket] = field(default_factory=dict)
    ws_clients: list[str] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    counter: int = 0

    def reset(self, variant: str = "both") -> None:
        self.variant = variant
        self.ipadapter = self.instantid = True
        self.new_combo_format = False
        self.models_endpoint = True
        self.history_delay = 0.3
        self.error_type, self.error_message = "RuntimeError", "Reference Image: No face detected."
        for coll in (self.uploads, self.history, self.outputs):
            coll.clear()
        for lst in (self.upload_forms, self.prompts, self.requests, self.queue_posts, self.interrupts, self.ws_clients):
            lst.clear()

    def node_types(self) -> list[str]:
        return BASE_NODES + (IPADAPTER_NODES if self.ipadapter else []) + (INSTANTID_NODES if self.instantid else [])

    def paths(self, prefix: str) -> list[str]:
        return [p for _, p in self.requests if p.startswith(prefix)]


def comfy_app(state: ComfyState) -> Starlette:
    def combo(options: list[str]) -> list[Any]:
        return ["COMBO", {"options": options}] if state.new_combo_format else [options, {}]

    async def log(request: Request) -> None:
        state.requests.append((request.method, request.url.path))

    async def system_stats(request: Request) -> Response:
        await log(request)
        return JSONResponse({"system": {"os": "posix", "comfyui_version": "0.3.44"}, "devices": []})

    async def object_info(request: Request) -> Response:
        await log(request)
        info: dict[str, Any] = {}
        for name in state.node_types():
            inputs: dict[str, Any] = {"required": {}}
            if name == "CheckpointLoaderSimple":
                inputs["required"]["ckpt_name"] = combo(state.checkpoints)
            if name == "LoadImage":
                inputs["required"]["image"] = combo(sorted(state.uploads))
            info[name] = {"input": inputs, "output": [], "name": name, "category": "test"}
        return JSONResponse(info)

    async def models_checkpoints(request: Request) -> Response:
        await log(request)
        if not state.models_endpoint:
            return Response("404: Not Found", status_code=404)
        return JSONResponse(state.checkpoints)

    async def upload_image(request: Request) -> Response:
        await log(request)
        form = await request.form()
        upload = form["image"]
        data = await upload.read()  # type: ignore[union-attr]
        subfolder = str(form.get("subfolder") or "")
        filename = str(upload.filename)  # type: ignore[union-attr]
        state.upload_forms.append({k: str(v) for k, v in form.items() if k != "image"})
        state.uploads[f"{subfolder}/{filename}" if subfolder else filename] = data
        return JSONResponse({"name": filename, "subfolder": subfolder, "type": "input"})

    def validation_error(nid: str, class_type: str, message: str, details: str) -> Response:
        return JSONResponse(
            {
                "error": {
                    "type": "prompt_outputs_failed_validation",
                    "message": "Prompt outputs failed validation",
                    "details": "",
                    "extra_info": {},
                },
                "node_errors": {
                    nid: {
                        "errors": [{"type": "value_not_in_list", "message": message, "details": details}],
                        "dependent_outputs": ["9"],
                        "class_type": class_type,
                    }
                },
            },
            status_code=400,
        )

    async def prompt(request: Request) -> Response:
        await log(request)
        body = await request.json()
        workflow = body.get("prompt")
        if not isinstance(workflow, dict) or "client_id" not in body:
            return JSONResponse({"error": {"type": "no_prompt", "message": "No prompt provided"}}, status_code=400)
        for nid, node in workflow.items():
            ct = node["class_type"]
            if ct not in state.node_types():
                return JSONResponse(
                    {
                        "error": {
                            "type": "invalid_prompt",
                            "message": f"Cannot execute because node {ct} does not exist.",
                            "details": f"Node ID '#{nid}'",
                        },
                        "node_errors": {},
                    },
                    status_code=400,
                )
            if ct == "CheckpointLoaderSimple" and node["inputs"]["ckpt_name"] not in state.checkpoints:
                return validation_error(nid, ct, "Value not in list", f"ckpt_name: '{node['inputs']['ckpt_name']}'")
            if ct == "LoadImage" and node["inputs"]["image"] not in state.uploads:
                return validation_error(nid, ct, "Invalid image file", f"image - {node['inputs']['image']}")
        prompt_id = str(uuid.uuid4())
        state.prompts.append({"prompt_id": prompt_id, "client_id": body["client_id"], "workflow": workflow})
        task = asyncio.create_task(execute(prompt_id, body["client_id"], workflow))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)
        return JSONResponse({"prompt_id": prompt_id, "number": len(state.prompts), "node_errors": {}})

    async def send(client_id: str, kind: str, data: dict[str, Any]) -> None:
        ws = state.sockets.get(client_id)
        if ws is None:
            return
        try:
            await ws.send_text(json.dumps({"type": kind, "data": data}))
        except Exception:  # the client went away; execution goes on as on a real server
            state.sockets.pop(client_id, None)

    async def send_bytes(client_id: str, data: bytes) -> None:
        ws = state.sockets.get(client_id)
        if ws is not None:
            try:
                await ws.send_bytes(data)
            except Exception:
                state.sockets.pop(client_id, None)

    def render(workflow: dict[str, Any]) -> dict[str, Any]:
        """The images the SaveImage nodes would write: colour from the seed, size from the latent/scale node."""
        sampler = next(n for n in workflow.values() if n["class_type"] == "KSampler")["inputs"]
        size_node = next((n for n in workflow.values() if n["class_type"] in ("EmptyLatentImage", "ImageScale")), None)
        width = size_node["inputs"]["width"] if size_node else 512
        height = size_node["inputs"]["height"] if size_node else 512
        outputs: dict[str, Any] = {}
        for nid, node in workflow.items():
            if node["class_type"] != "SaveImage":
                continue
            prefix = node["inputs"]["filename_prefix"]
            subfolder, _, base = prefix.rpartition("/")
            state.counter += 1
            filename = f"{base}_{state.counter:05d}_.png"
            state.outputs[(filename, subfolder, "output")] = solid_png(width, height, seed_colour(sampler["seed"]))
            outputs[nid] = {"images": [{"filename": filename, "subfolder": subfolder, "type": "output"}]}
        # a PreviewImage-style temp output that must not be taken as a result
        outputs["99"] = {"images": [{"filename": "preview_00001_.png", "subfolder": "", "type": "temp"}]}
        return outputs

    def write_history(prompt_id: str, workflow: dict[str, Any], outputs: dict[str, Any], status: str) -> None:
        messages: list[Any] = [["execution_start", {"prompt_id": prompt_id, "timestamp": 1}]]
        if status == "error":
            messages.append(
                [
                    "execution_error",
                    {
                        "prompt_id": prompt_id,
                        "node_id": "3",
                        "node_type": "KSampler",
                        "exception_type": state.error_type,
                        "exception_message": state.error_message,
                    },
                ]
            )
        state.history[prompt_id] = {
            "prompt": [len(state.prompts), prompt_id, workflow, {"client_id": "x"}, list(outputs)],
            "outputs": outputs,
            "status": {"status_str": status, "completed": status == "success", "messages": messages},
            "meta": {},
        }

    async def execute(prompt_id: str, client_id: str, workflow: dict[str, Any]) -> None:
        variant = state.variant
        await asyncio.sleep(0.02)
        await send(client_id, "status", {"status": {"exec_info": {"queue_remaining": 1}}, "sid": client_id})
        await send(client_id, "progress", {"value": 9, "max": 10, "prompt_id": "someone-else", "node": "3"})
        await send(client_id, "executing", {"node": None, "prompt_id": "someone-else"})
        await send(client_id, "execution_start", {"prompt_id": prompt_id, "timestamp": int(time.time() * 1000)})
        if variant == "cached":
            await send(client_id, "execution_cached", {"nodes": list(workflow), "prompt_id": prompt_id})
        else:
            await send(client_id, "execution_cached", {"nodes": [], "prompt_id": prompt_id})
            for nid, node in workflow.items():
                await send(client_id, "executing", {"node": nid, "display_node": nid, "prompt_id": prompt_id})
                await asyncio.sleep(0.005)
                if node["class_type"] != "KSampler":
                    continue
                if variant == "hang":
                    await asyncio.sleep(3600)
                for step in range(1, state.steps + 1):
                    await send(
                        client_id, "progress", {"value": step, "max": state.steps, "prompt_id": prompt_id, "node": nid}
                    )
                    await send_bytes(client_id, struct.pack(">II", 1, 2) + solid_png(8, 8, (1, 2, 3)))
                    await asyncio.sleep(0.01)
                    if variant == "ws_drop" and step == 1 and client_id in state.sockets:
                        await state.sockets.pop(client_id).close()
                if variant == "error":
                    await send(
                        client_id,
                        "execution_error",
                        {
                            "prompt_id": prompt_id,
                            "node_id": nid,
                            "node_type": node["class_type"],
                            "executed": [],
                            "exception_message": state.error_message,
                            "exception_type": state.error_type,
                            "traceback": ["..."],
                        },
                    )
                    write_history(prompt_id, workflow, {}, "error")
                    return
                if variant == "interrupted":
                    await send(
                        client_id,
                        "execution_interrupted",
                        {"prompt_id": prompt_id, "node_id": nid, "node_type": "KSampler", "executed": []},
                    )
                    return
        outputs = render(workflow)
        if variant != "cached":
            for nid, out in outputs.items():
                if nid in workflow:
                    await send(
                        client_id, "executed", {"node": nid, "display_node": nid, "output": out, "prompt_id": prompt_id}
                    )
        done = {"prompt_id": prompt_id, "timestamp": int(time.time() * 1000)}
        if variant in ("both", "cached"):
            await send(client_id, "execution_success", done)
            write_history(prompt_id, workflow, outputs, "success")
            await send(client_id, "executing", {"node": None, "prompt_id": prompt_id})
        elif variant == "executing_null":
            write_history(prompt_id, workflow, outputs, "success")
            await send(client_id, "executing", {"node": None, "prompt_id": prompt_id})
        elif variant == "success_only":
            await send(client_id, "execution_success", done)
            await asyncio.sleep(state.history_delay)  # ComfyUI writes history after it sends execution_success
            write_history(prompt_id, workflow, outputs, "success")
        elif variant == "ws_drop":
            await asyncio.sleep(state.history_delay)
            write_history(prompt_id, workflow, outputs, "success")

    async def history(request: Request) -> Response:
        await log(request)
        pid = request.path_params["prompt_id"]
        return JSONResponse({pid: state.history[pid]} if pid in state.history else {})

    async def view(request: Request) -> Response:
        await log(request)
        q = request.query_params
        key = (q.get("filename", ""), q.get("subfolder", ""), q.get("type", ""))
        if key not in state.outputs:
            return Response("404: Not Found", status_code=404)
        return Response(state.outputs[key], media_type="image/png")

    async def queue(request: Request) -> Response:
        await log(request)
        if request.method == "POST":
            state.queue_posts.append(await request.json())
            return Response(status_code=200)
        running = [[1, p["prompt_id"], {}, {}, []] for p in state.prompts if p["prompt_id"] not in state.history]
        return JSONResponse({"queue_running": running[:1], "queue_pending": running[1:]})

    async def interrupt(request: Request) -> Response:
        await log(request)
        state.interrupts.append(await request.json())
        return Response(status_code=200)

    async def ws_endpoint(ws: WebSocket) -> None:
        client_id = ws.query_params.get("clientId") or uuid.uuid4().hex
        await ws.accept()
        state.sockets[client_id] = ws
        state.ws_clients.append(client_id)
        await ws.send_text(
            json.dumps({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}})
        )
        try:
            while True:
                await ws.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if state.sockets.get(client_id) is ws:
                state.sockets.pop(client_id, None)

    return Starlette(
        routes=[
            Route("/system_stats", system_stats),
            Route("/object_info", object_info),
            Route("/models/checkpoints", models_checkpoints),
            Route("/upload/image", upload_image, methods=["POST"]),
            Route("/prompt", prompt, methods=["POST"]),
            Route("/history/{prompt_id}", history),
            Route("/view", view),
            Route("/queue", queue, methods=["GET", "POST"]),
            Route("/interrupt", interrupt, methods=["POST"]),
            WebSocketRoute("/ws", ws_endpoint),
        ]
    )

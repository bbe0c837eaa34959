"""Shared by the public media tests: a live app on 127.0.0.1, a local S3 (moto), a routed Instagram adapter."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import update

from ainfluencer.db.models import Job, JobStatus, utcnow
from ainfluencer.jobs import runner
from ainfluencer.runtime import Runtime

S3_REGION = "us-east-1"
S3_KEY_ID = "AKIAPUBLICMEDIATEST"
S3_SECRET = "public-media-test-secret"  # moto accepts any key pair
BUCKET_FOR_TESTS = "ainf-instagram"


@contextmanager
def live_app(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on 127.0.0.1 (free port); yields the base URL, stops it after."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            time.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def local_s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (free port); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_test_client(endpoint: str) -> Any:
    """A plain boto3 client for the local S3 (what a test uses to look behind the service)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=S3_REGION, aws_access_key_id=S3_KEY_ID,
                        aws_secret_access_key=S3_SECRET)


# The real Instagram adapter's timing against a local Graph server (no polling waits).
INSTAGRAM_TIMING = {"poll_interval_s": 0, "publish_wait_s": 0, "child_wait_s": 5}


def drain(runtime: Runtime, *, kinds: tuple[str, ...] = ("publish", "publish.reconcile", "publish.check")) -> int:
    """Run due publishing jobs in this process (clock moved past backoffs) until none is left."""
    ran = 0
    for _ in range(50):
        with runtime.db.session() as s:
            s.execute(update(Job).where(Job.status == JobStatus.queued).values(run_at=utcnow() - timedelta(seconds=1)))
        job_id = runner.claim_next(runtime, worker="test-worker", kinds=list(kinds))
        if job_id is None:
            return ran
        runner.execute(runtime, job_id, worker="test-worker")
        ran += 1
    raise AssertionError("jobs kept coming")

"""Real Chromium against a real `ainfluencer up` (embedded worker, real Piper and ffmpeg): save a character's voice
(Piper, speed 1.1) and see it kept after a reload; then compose a short video from four approved vault images and
follow the job's per-stage progress on the page until it links to the finished video asset. No inline script or
style may be refused by the CSP on the way."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _app import browser_page, owner_env, running_app, sign_in

from ainfluencer.config import Settings
from ainfluencer.db.models import Character, User
from ainfluencer.db.models_media import Asset, AssetKind, AssetSource, ReviewState
from ainfluencer.runtime import Runtime
from ainfluencer.services import studio_av, vault

pytestmark = pytest.mark.browser

np = pytest.importorskip("numpy", reason="the studio video test needs ainfluencer[media] (numpy)")
Image = pytest.importorskip("PIL.Image", reason="the studio video test needs ainfluencer[media] (Pillow)")
pytest.importorskip("piper", reason="the studio video test needs piper-tts (ainfluencer[media])")

EMAIL = "director@example.com"
PASSWORD = "correct horse battery"
# four short scenes, about 6 s of speech: the shortest useful video, one image per paragraph
SCRIPT = "Hi, I'm Nova.\n\nI am made with AI.\n\nThis is my studio.\n\nSee you soon!"
# records each state the progress panel shows (htmx swaps it in); run through Playwright, not the page's CSP
WATCH = """() => {
  const snap = () => {
    const panel = document.getElementById('video-job');
    if (!panel) return;
    const status = panel.querySelector('[data-job-status]').textContent.trim();
    const stages = Array.from(panel.querySelectorAll('[data-stage]'))
      .map(li => li.dataset.stage + ':' + li.dataset.state);
    const line = status + ' ' + stages.join(',');
    if (window.__avStates[window.__avStates.length - 1] !== line) window.__avStates.push(line);
  };
  window.__avStates = [];
  snap();
  new MutationObserver(snap).observe(document.getElementById('progress'), {childList: true, subtree: true});
}"""


@dataclass
class Setup:
    base: str
    data_dir: Path
    character_id: int
    image_ids: list[int]


def _picture(seed: int) -> bytes:
    """A 720×1080 PNG with a gradient and a block of colour, distinct per seed."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 255, 1080)[:, None, None]
    x = np.linspace(0, 255, 720)[None, :, None]
    pixels = ((x + y) / 2 + rng.uniform(0, 255, 3)) % 256
    pixels = np.broadcast_to(pixels, (1080, 720, 3)).astype("uint8").copy()
    pixels[300:700, 150:550] = rng.integers(0, 255, 3)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, "PNG")
    return buf.getvalue()


def _runtime(data_dir: Path) -> Runtime:
    return Runtime.build(Settings(data_dir=data_dir))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """An owner (CLI), a character and four approved images of it ingested into the vault."""
    data_dir = tmp_path_factory.mktemp("ainf-studio-av")
    env = owner_env(data_dir, EMAIL, PASSWORD, provenance=True)
    rt = _runtime(data_dir)
    try:
        with rt.db.session() as s:
            user = s.query(User).filter(User.email == EMAIL).one()
            character = Character(user_id=user.id, name="Nova Vale", handle="nova.vale", timezone="UTC")
            s.add(character)
            s.flush()
            character_id, user_id = character.id, user.id
        image_ids = []
        for seed in range(4):
            with rt.db.session() as s:
                c = s.get(Character, character_id)
                result = vault.ingest(s, settings=rt.settings, data=_picture(seed), filename=f"scene{seed}.png",
                                      kind=AssetKind.image, character=c, user_id=user_id,
                                      source=AssetSource.generated, review_state=ReviewState.approved,
                                      run_gates=False)
                image_ids.append(result.asset.id)
    finally:
        rt.close()
    with running_app(env, data_dir.parent / "studio-av-server.log") as base:
        yield Setup(base=base, data_dir=data_dir, character_id=character_id, image_ids=image_ids)


def test_voice_settings_persist_after_reload(server: Setup, browser: Any) -> None:
    path = f"/studio/{server.character_id}/voice"
    with browser_page(browser, failure_screenshot="studio-av-voice.png") as (page, problems):
        sign_in(page, server.base, EMAIL, PASSWORD, path)
        page.locator("#v-engine").select_option("piper")
        page.fill("#v-speed", "1.1")
        page.get_by_role("button", name="Save voice").click()
        page.wait_for_url(f"**{path}?done=voice")
        assert "Voice saved" in page.locator(".alert-success").inner_text()

        page.reload()
        assert page.locator("#v-engine").input_value() == "piper"
        assert float(page.locator("#v-speed").input_value()) == pytest.approx(1.1)
        # studio_av.js applies Piper's capabilities to the form: no pitch control
        assert page.locator("#v-pitch").is_disabled()
        assert page.locator("#engine-notice").count() == 0  # Piper runs here
        page.goto(server.base + f"/studio/{server.character_id}/video")
        assert "speed 1.1" in page.locator("#compose .hint").first.inner_text()

        rt = _runtime(server.data_dir)
        try:
            with rt.db.session() as s:
                c = s.get(Character, server.character_id)
                assert c is not None
                config = studio_av.voice_config(s, c)
                assert config.engine == "piper" and config.speed == pytest.approx(1.1)
        finally:
            rt.close()
        assert problems == [], problems


def test_short_video_progress_then_asset_link(server: Setup, browser: Any) -> None:
    path = f"/studio/{server.character_id}/video"
    with browser_page(browser, failure_screenshot="studio-av-video.png") as (page, problems):
        sign_in(page, server.base, EMAIL, PASSWORD, path)
        # the four approved images are chosen by default, in the page's order
        boxes = page.locator("input[name=image_ids]")
        chosen = [int(v) for v in boxes.evaluate_all("els => els.filter(e => e.checked).map(e => e.value)")]
        assert sorted(chosen) == sorted(server.image_ids)
        page.fill("#vd-script", SCRIPT)
        assert page.locator("[data-script-count]").inner_text() == str(len(" ".join(SCRIPT.split())))
        page.locator("#vd-preset").select_option("shorts")
        page.get_by_role("button", name="Compose video").click()
        page.wait_for_url(re.compile(r"/video\?job=\d+#progress$"))
        match = re.search(r"job=(\d+)", page.url)
        assert match is not None
        job_id = int(match.group(1))
        page.evaluate(WATCH)

        # ffmpeg and Piper on a busy machine: a generous wait for the finished panel
        link = page.locator("#video-job .av-result a", has_text="Open the video")
        link.wait_for(timeout=240_000)
        states: list[str] = page.evaluate("window.__avStates")
        status = page.locator("#video-job [data-job-status]").inner_text()
        assert status == "succeeded", (status, states, page.locator("#video-job").inner_text())

        # the panel went through per-stage states, never backwards, ending with every stage done
        assert len(states) >= 3, states
        assert states[-1].startswith("succeeded ") and states[-1].count(":done") == len(studio_av.VIDEO_STAGES)
        running = [s for s in states if not s.startswith("succeeded ")]
        assert len({s.split(" ", 1)[1] for s in states}) >= 2, states
        order = list(studio_av.VIDEO_STAGES)
        active = [order.index(part.split(":")[0]) for s in running for part in s.split(" ", 1)[1].split(",")
                  if part.endswith(":active")]
        assert active and active == sorted(active), states

        match = re.search(r"#(\d+)", link.inner_text())
        assert match is not None
        video_id = int(match.group(1))
        assert link.get_attribute("href") == f"/vault/assets/{video_id}"
        resp = page.request.get(f"{server.base}/api/v1/assets/{video_id}")
        assert resp.status == 200, resp.text()
        body = resp.json()
        assert body["kind"] == "video" and body["character_id"] == server.character_id
        job = page.request.get(f"{server.base}/api/v1/jobs/{job_id}").json()
        assert job["status"] == "succeeded" and job["result"]["asset_id"] == video_id, job
        rt = _runtime(server.data_dir)
        try:
            with rt.db.session() as s:
                video = s.get(Asset, video_id)
                assert video is not None and video.kind == AssetKind.video and video.mime == "video/mp4"
                assert video.params["image_asset_ids"] == chosen and video.params["preset"] == "shorts"
                assert (video.duration_s or 0) > 1
        finally:
            rt.close()

        # the link opens the asset page, which previews the video
        link.click()
        page.wait_for_url(f"**/vault/assets/{video_id}")
        assert page.locator("video").count() >= 1
        assert problems == [], problems

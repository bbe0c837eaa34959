"""Vault service: ingest (layout, provenance, gates), filters, search, batch, review states, zip, delete."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from ainfluencer.db.models import Character, User, utcnow
from ainfluencer.db.models_media import Asset, AssetKind, AssetSource, ReviewState
from ainfluencer.errors import Conflict, InvalidInput, NotFound
from ainfluencer.media.provenance.metadata import DIGITAL_SOURCE_TYPE_TRAINED, read_provenance
from ainfluencer.media.safe_image import MediaRejected
from ainfluencer.runtime import Runtime
from ainfluencer.services import studio, vault
from vault.conftest import astronaut_bytes, grace_hopper_bytes, image_bytes, mp4_bytes, tree, wav_bytes


def _ingest(runtime: Runtime, character: Character | None, data: bytes, user: User, **kw):  # type: ignore[no-untyped-def]
    with runtime.db.session() as s:
        c = s.get(Character, character.id) if character is not None else None
        result = vault.ingest(s, settings=runtime.settings, data=data, character=c, user_id=user.id, **kw)
        return result.asset.id, result.duplicate


def _asset(runtime: Runtime, asset_id: int) -> Asset:
    with runtime.db.session() as s:
        asset = s.get(Asset, asset_id)
        assert asset is not None
        asset.tag_names  # load tags before the session closes  # noqa: B018
        return asset


def _jpeg_with_gps() -> bytes:
    im = Image.open(io.BytesIO(image_bytes("PNG", seed=9)))
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS 5D"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (48.0, 51.0, 29.0)
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_ingest_stores_content_addressed_labels_signs_and_verifies(runtime, owner, make_character, signing):
    ava = make_character(owner)
    data = _jpeg_with_gps()
    asset_id, dup = _ingest(runtime, ava, data, owner, filename="../../holiday.jpg", tags=["Summer", "#beach"],
                            generation=vault.GenerationInfo(prompt="a beach at dawn", backend="a1111", model="sdxl",
                                                            seed=4294967000, cost_usd=0.02, generation_ms=1500))
    assert not dup
    asset = _asset(runtime, asset_id)
    now = utcnow()
    assert asset.path == f"ava.nova/{now:%Y}/{now:%m}/{asset.sha256[:2]}/{asset.sha256}.jpg"
    path = runtime.settings.media_dir / asset.path
    assert path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == asset.sha256
    assert asset.size == path.stat().st_size
    assert asset.original_name == "holiday.jpg"
    assert (asset.mime, asset.width, asset.height) == ("image/jpeg", 160, 120)
    assert asset.seed == 4294967000 and asset.backend == "a1111" and asset.model == "sdxl"
    assert asset.tag_names == ["beach", "summer"]
    assert asset.review_state == ReviewState.in_review
    # provenance: AI label added, GPS and camera gone, C2PA manifest reads back valid with our CA
    info = read_provenance(path)
    assert info["digital_source_type"] == DIGITAL_SOURCE_TYPE_TRAINED
    assert info["private_metadata"] == []
    assert asset.provenance["c2pa"]["state"] == "signed"
    assert asset.provenance["c2pa"]["verified"] is True
    assert vault.provenance_verified(asset)
    # scores: technical and perceptual hash; no canonical face yet, so no face score
    assert asset.technical_score is not None and len(asset.phash) == 32
    assert asset.face_similarity is None
    assert any("no canonical face" in n for n in asset.scores["notes"])
    # the same bytes again are the same asset
    again, dup = _ingest(runtime, ava, data, owner)
    assert dup and again == asset_id
    # re-verification reads the file back
    with runtime.db.session() as s:
        a = s.get(Asset, asset_id)
        report = vault.verify_provenance(s, settings=runtime.settings, asset=a)
    assert report["c2pa"]["verified"] is True
    # tampering shows: change one byte inside the image data, re-verify
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    path.write_bytes(bytes(raw))
    with runtime.db.session() as s:
        report = vault.verify_provenance(s, settings=runtime.settings, asset=s.get(Asset, asset_id))
    assert report["c2pa"]["verified"] is False


def test_without_signing_set_up_images_are_still_labelled(runtime, owner):
    asset_id, _ = _ingest(runtime, None, image_bytes(), owner)
    asset = _asset(runtime, asset_id)
    assert asset.path.startswith("unassigned/")
    assert asset.provenance["xmp"]["labelled"] is True
    assert asset.provenance["c2pa"]["state"] == "unsigned"
    assert "provenance init" in asset.provenance["c2pa"]["message"]
    assert not vault.provenance_verified(asset)


def test_audio_and_video_ingest_with_basic_checks(runtime, owner, make_character):
    ava = make_character(owner)
    wav_id, _ = _ingest(runtime, ava, wav_bytes(1.5), owner, filename="voice.wav")
    mp4_id, _ = _ingest(runtime, ava, mp4_bytes(2500), owner, filename="clip.mp4")
    wav, mp4 = _asset(runtime, wav_id), _asset(runtime, mp4_id)
    assert (wav.kind, wav.mime, wav.duration_s) == (AssetKind.audio, "audio/wav", 1.5)
    assert (mp4.kind, mp4.mime, mp4.duration_s) == (AssetKind.video, "video/mp4", 2.5)
    assert wav.path.endswith(".wav") and mp4.path.endswith(".mp4")
    with runtime.db.session() as s, pytest.raises(MediaRejected, match="truncated"):
        vault.ingest(s, settings=runtime.settings, data=mp4_bytes(truncate=True), filename="cut.mp4")
    with runtime.db.session() as s, pytest.raises(MediaRejected, match="sent as audio but is a video"):
        vault.ingest(s, settings=runtime.settings, data=mp4_bytes(), filename="song.mp3")
    with runtime.db.session() as s, pytest.raises(MediaRejected, match="not a supported file"):
        vault.ingest(s, settings=runtime.settings, data=b"hello world, not media", filename="notes.bin")


def test_face_gates_against_the_canonical_face(runtime, owner, make_character):
    ava = make_character(owner)
    canonical_id, _ = _ingest(runtime, ava, astronaut_bytes(), owner)
    with runtime.db.session() as s:
        studio.pick_canonical_face(s, user=s.get(User, owner.id), settings=runtime.settings,
                                   character=s.get(Character, ava.id), asset=s.get(Asset, canonical_id))
    same_id, _ = _ingest(runtime, ava, astronaut_bytes(transform=lambda p: p[:, ::-1]), owner)
    other_id, _ = _ingest(runtime, ava, grace_hopper_bytes(), owner)
    same, other = _asset(runtime, same_id), _asset(runtime, other_id)
    assert same.face_similarity is not None and same.face_similarity > 0.6
    assert same.gate_decision == "pass", same.gate_reasons
    assert other.face_similarity is not None and other.face_similarity < 0.363
    assert other.gate_decision == "flag"
    assert any("does not match the canonical face" in r for r in other.gate_reasons)
    assert other.review_state == ReviewState.in_review
    # a near-copy of an earlier image is a near-duplicate
    copy_id, _ = _ingest(runtime, ava, astronaut_bytes(fmt="PNG"), owner)
    copy = _asset(runtime, copy_id)
    assert copy.scores["duplicates"] and copy.scores["duplicates"][0]["asset_id"] == canonical_id
    assert any("near-duplicate of asset" in r for r in copy.gate_reasons)
    # with action "reject" a failing image is filed as rejected
    with runtime.db.session() as s:
        studio.update_media_settings(s, user=s.get(User, owner.id), character=s.get(Character, ava.id),
                                     thresholds={"action": "reject"})
    rejected_id, _ = _ingest(runtime, ava, grace_hopper_bytes(quality=80), owner)
    rejected = _asset(runtime, rejected_id)
    assert rejected.gate_decision == "reject" and rejected.review_state == ReviewState.rejected


def _seed_assets(runtime: Runtime, owner: User, make_character) -> dict[str, int]:  # type: ignore[no-untyped-def]
    ava = make_character(owner)
    bo = make_character(owner, name="Bo", handle="bo")
    ids = {
        "beach": _ingest(runtime, ava, image_bytes(seed=1), owner, tags=["beach"], folder="campaigns/summer",
                         generation=vault.GenerationInfo(prompt="Golden hour on the BEACH"))[0],
        "city": _ingest(runtime, ava, image_bytes(seed=2), owner, tags=["city"], folder="campaigns/winter",
                        generation=vault.GenerationInfo(prompt="neon city at night", caption="Late walk 100%"))[0],
        "bo": _ingest(runtime, bo, image_bytes(seed=3), owner, tags=["beach", "team"])[0],
        "voice": _ingest(runtime, ava, wav_bytes(), owner, filename="intro_voice.wav")[0],
    }
    return ids


def test_filters_search_and_pages(runtime, owner, make_character):
    ids = _seed_assets(runtime, owner, make_character)
    with runtime.db.session() as s:
        user = s.get(User, owner.id)
        ava_id = s.get(Asset, ids["beach"]).character_id

        def found(**kw) -> set[int]:  # type: ignore[no-untyped-def]
            sort = kw.pop("sort", "-created")
            return {a.id for a in vault.list_assets(s, user=user, filters=vault.AssetFilter(**kw), sort=sort).items}

        assert found() == set(ids.values())
        assert found(character_id=ava_id) == {ids["beach"], ids["city"], ids["voice"]}
        assert found(kind=AssetKind.audio) == {ids["voice"]}
        assert found(tag="#Beach") == {ids["beach"], ids["bo"]}
        assert found(folder="campaigns") == {ids["beach"], ids["city"]}
        assert found(folder="campaigns/summer") == {ids["beach"]}
        assert found(q="beach") == {ids["beach"], ids["bo"]}  # prompt (any case) and tag
        assert found(q="100%") == {ids["city"]}  # LIKE wildcards are literal
        assert found(q="intro_voice") == {ids["voice"]}  # file name
        assert found(q="nothing-like-this") == set()
        assert found(min_technical=0.0) == {ids["beach"], ids["city"], ids["bo"]}  # audio has no score
        assert found(date_from=utcnow() - timedelta(minutes=5), date_to=utcnow() + timedelta(minutes=5)) \
            == set(ids.values())
        assert found(date_from=utcnow() + timedelta(days=1)) == set()
        assert found(review_state=[ReviewState.in_review]) == set(ids.values())
        page = vault.list_assets(s, user=user, limit=2, offset=2)
        assert page.total == 4 and len(page.items) == 2 and page.pages == 2 and page.page == 2
        assert [a.id for a in vault.list_assets(s, user=user, sort="created").items] == sorted(ids.values())
        with pytest.raises(InvalidInput):
            vault.list_assets(s, user=user, sort="random")


def test_members_see_only_their_own_assets(runtime, owner, make_character, make_user):
    ids = _seed_assets(runtime, owner, make_character)
    member = make_user("member@example.com", owner=False)
    mine, _ = _ingest(runtime, None, image_bytes(seed=7), member)
    with runtime.db.session() as s:
        m = s.get(User, member.id)
        assert {a.id for a in vault.list_assets(s, user=m).items} == {mine}
        with pytest.raises(NotFound):
            vault.get_asset(s, ids["beach"], user=m)


def test_review_transitions(runtime, owner):
    asset_id, _ = _ingest(runtime, None, image_bytes(), owner)
    with runtime.db.session() as s:
        user, asset = s.get(User, owner.id), s.get(Asset, asset_id)
        assert asset.review_state == ReviewState.in_review
        for state in ("approved", "rejected", "approved", "archived", "in_review", "draft", "in_review"):
            vault.set_review_state(s, user=user, asset=asset, state=state)
            assert asset.review_state == ReviewState(state)
            assert asset.reviewed_by == user.id and asset.reviewed_at is not None
        vault.set_review_state(s, user=user, asset=asset, state="archived")
        with pytest.raises(Conflict, match="can move to in_review, not approved"):
            vault.set_review_state(s, user=user, asset=asset, state="approved")
        with pytest.raises(InvalidInput):
            vault.set_review_state(s, user=user, asset=asset, state="published")


def test_batch_actions(runtime, owner, make_character):
    ids = _seed_assets(runtime, owner, make_character)
    settings = runtime.settings
    with runtime.db.session() as s:
        user = s.get(User, owner.id)
        done = vault.batch(s, user=user, settings=settings, ids=[ids["beach"], ids["city"]], action="approve")
        assert done.done == [ids["beach"], ids["city"]] and not done.skipped
        vault.batch(s, user=user, settings=settings, ids=[ids["bo"]], action="archive")
        mixed = vault.batch(s, user=user, settings=settings, ids=[ids["bo"], ids["voice"]], action="approve")
        assert mixed.done == [ids["voice"]] and ids["bo"] in mixed.skipped
        vault.batch(s, user=user, settings=settings, ids=list(ids.values()), action="tag", tags=["Q3 launch"])
        vault.batch(s, user=user, settings=settings, ids=[ids["city"]], action="untag", tags=["city"])
        vault.batch(s, user=user, settings=settings, ids=[ids["voice"], ids["bo"]], action="move",
                    folder="/audio//../clips/")
        with pytest.raises(InvalidInput):
            vault.batch(s, user=user, settings=settings, ids=[ids["bo"]], action="publish")
        with pytest.raises(NotFound):
            vault.batch(s, user=user, settings=settings, ids=[999999], action="approve")
    city, voice = _asset(runtime, ids["city"]), _asset(runtime, ids["voice"])
    assert city.review_state == ReviewState.approved and city.tag_names == ["q3-launch"]
    assert voice.folder == "audio/clips" and "q3-launch" in voice.tag_names
    path = runtime.settings.media_dir / city.path
    with runtime.db.session() as s:
        vault.batch(s, user=s.get(User, owner.id), settings=settings, ids=[ids["city"], ids["voice"]],
                    action="delete")
        assert path.exists()  # files go only once the deletion commits
    assert not path.exists()
    with runtime.db.session() as s:
        assert s.get(Asset, ids["city"]) is None and s.get(Asset, ids["beach"]) is not None


def test_delete_rolled_back_keeps_the_file(runtime, owner):
    asset_id, _ = _ingest(runtime, None, image_bytes(), owner)
    path = runtime.settings.media_dir / _asset(runtime, asset_id).path
    with pytest.raises(RuntimeError), runtime.db.session() as s:
        vault.delete_assets(s, user=s.get(User, owner.id), assets=[s.get(Asset, asset_id)], settings=runtime.settings)
        raise RuntimeError("something later in the request failed")
    assert path.exists() and _asset(runtime, asset_id)


def test_ingest_rolled_back_leaves_no_file(runtime, owner):
    before = tree(runtime.settings.media_dir)
    with pytest.raises(RuntimeError), runtime.db.session() as s:
        vault.ingest(s, settings=runtime.settings, data=image_bytes(seed=5), user_id=owner.id)
        raise RuntimeError("the request failed after the ingest")
    assert tree(runtime.settings.media_dir) == before


def test_delete_refused_while_a_scheduled_post_uses_the_asset(runtime, owner, make_character):
    from ainfluencer.db.models_publishing import Publication, PublicationStatus, SocialAccount

    ava = make_character(owner)
    used, _ = _ingest(runtime, ava, image_bytes(seed=1), owner)
    by_path, _ = _ingest(runtime, ava, image_bytes(seed=2), owner)
    free, _ = _ingest(runtime, ava, image_bytes(seed=3), owner)
    with runtime.db.session() as s:
        account = SocialAccount(character_id=ava.id, platform="mastodon", platform_account_id="1", handle="@ava")
        s.add(account)
        s.flush()
        used_path, other_path = s.get(Asset, used).path, s.get(Asset, by_path).path
        s.add(Publication(character_id=ava.id, account_id=account.id, text="hi", scheduled_at=utcnow() + timedelta(1),
                          media=[{"asset_id": used, "path": used_path, "kind": "image"}]))
        s.add(Publication(character_id=ava.id, account_id=account.id, text="yo", scheduled_at=utcnow() + timedelta(2),
                          status=PublicationStatus.retry_wait, media=[{"path": other_path, "kind": "image"}]))
        s.add(Publication(character_id=ava.id, account_id=account.id, text="old", scheduled_at=utcnow(),
                          status=PublicationStatus.published, media=[{"asset_id": free, "kind": "image"}]))
    with runtime.db.session() as s:
        user = s.get(User, owner.id)
        with pytest.raises(Conflict) as exc:
            vault.batch(s, user=user, settings=runtime.settings, ids=[used, by_path, free], action="delete")
        assert f"asset {used} is used by post #" in exc.value.message and "(planned, scheduled" in exc.value.message
        assert f"asset {by_path} is used by post #" in exc.value.message and "retry_wait" in exc.value.message
        assert "Nothing was deleted" in exc.value.message
    assert all(_asset(runtime, i) for i in (used, by_path, free))
    with runtime.db.session() as s:
        assert vault.delete_assets(s, user=s.get(User, owner.id), assets=[s.get(Asset, free)],
                                   settings=runtime.settings) == 1
        for pub in s.scalars(select(Publication)):
            pub.status = PublicationStatus.cancelled
    with runtime.db.session() as s:
        assert vault.delete_assets(s, user=s.get(User, owner.id), assets=[s.get(Asset, used)],
                                   settings=runtime.settings) == 1


def test_review_queue_puts_flagged_first_then_oldest(runtime, owner):
    a, _ = _ingest(runtime, None, image_bytes(seed=1), owner)
    b, _ = _ingest(runtime, None, image_bytes(seed=2), owner)
    c, _ = _ingest(runtime, None, image_bytes(seed=3), owner)
    d, _ = _ingest(runtime, None, image_bytes(seed=4), owner)
    with runtime.db.session() as s:
        s.get(Asset, c).gate_decision = "flag"
        s.get(Asset, a).gate_decision = "pass"
        vault.set_review_state(s, user=s.get(User, owner.id), asset=s.get(Asset, d), state="approved")
    with runtime.db.session() as s:
        assert [x.id for x in vault.review_queue(s, user=s.get(User, owner.id))] == [c, a, b]


def test_zip_stream_holds_the_files_and_a_manifest(runtime, owner, make_character):
    ids = _seed_assets(runtime, owner, make_character)
    with runtime.db.session() as s:
        assets = vault.assets_by_ids(s, user=s.get(User, owner.id), ids=[ids["beach"], ids["voice"], ids["bo"]])
        handles = {c.id: c.handle for c in s.scalars(select(Character))}
        entries = vault.zip_entries(runtime.settings, assets, handles)
        manifest = [vault.asset_manifest(a) for a in assets]
        paths = {a.id: runtime.settings.media_dir / a.path for a in assets}
        chunks = list(vault.zip_stream(entries, manifest))
    assert len(chunks) > 3  # streamed in pieces, not one blob
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.testzip() is None
    names = archive.namelist()
    assert names[-1] == "manifest.json" and len(names) == 4
    for asset_id, path in paths.items():
        (name,) = [n for n in names if n.split("/")[-1].startswith(f"{asset_id}-")]
        assert archive.read(name) == path.read_bytes()
    assert any(n.startswith("ava.nova/") for n in names) and any(n.startswith("bo/") for n in names)
    meta = json.loads(archive.read("manifest.json"))
    assert {m["id"] for m in meta} == set(paths) and all("provenance" in m and "scores" in m for m in meta)


def test_tags_and_folders_are_cleaned(runtime, owner):
    asset_id, _ = _ingest(runtime, None, image_bytes(), owner, tags=["  Fall  Look ", "fall-look", "#ok_1"],
                          folder="../../etc/passwd")
    asset = _asset(runtime, asset_id)
    assert asset.tag_names == ["fall-look", "ok_1"]
    assert asset.folder == "etc/passwd"  # a label only: folders never touch the file system
    with pytest.raises(InvalidInput):
        vault.clean_tag("!!!")
    assert vault.clean_folder("a/./b//c/..") == "a/b/c"


def test_reference_photos_need_consent_and_are_never_publishable(runtime, owner, make_character):
    ava = make_character(owner)
    with runtime.db.session() as s:
        user, character = s.get(User, owner.id), s.get(Character, ava.id)
        with pytest.raises(InvalidInput, match="Confirm"):
            studio.add_reference_photo(s, user=user, settings=runtime.settings, character=character,
                                       data=astronaut_bytes(), filename="me.jpg",
                                       consent_statement="x" * 40, consent_confirmed=False)
        with pytest.raises(InvalidInput, match="consent statement"):
            studio.add_reference_photo(s, user=user, settings=runtime.settings, character=character,
                                       data=astronaut_bytes(), filename="me.jpg", consent_statement="ok",
                                       consent_confirmed=True)
    assert not (runtime.settings.media_dir).exists() or tree(runtime.settings.media_dir) == set()
    statement = "Eileen Collins agreed in writing on 2026-01-05 to this photo being the face reference."
    with runtime.db.session() as s:
        photo = studio.add_reference_photo(s, user=s.get(User, owner.id), settings=runtime.settings,
                                           character=s.get(Character, ava.id), data=astronaut_bytes(),
                                           filename="me.jpg", consent_statement=statement, consent_confirmed=True)
        asset_id = photo.asset_id
        assert photo.consent_statement == statement and photo.consented_by == owner.id
    asset = _asset(runtime, asset_id)
    assert asset.source == AssetSource.reference and asset.review_state == ReviewState.draft
    info = read_provenance(runtime.settings.media_dir / asset.path)
    assert info["digital_source_type"] is None and info["private_metadata"] == []
    with runtime.db.session() as s, pytest.raises(Conflict, match="never be approved"):
        vault.set_review_state(s, user=s.get(User, owner.id), asset=s.get(Asset, asset_id), state="approved")


def test_prompt_is_built_from_persona_appearance_brief_and_style(runtime, owner, make_character):
    from ainfluencer.characters.persona import Persona

    ava = make_character(owner)
    with runtime.db.session() as s:
        user, character = s.get(User, owner.id), s.get(Character, ava.id)
        canonical = studio.create_appearance(s, user=user, character=character, name="canonical",
                                             fields={"face": "oval face, freckles", "hair": "auburn bob",
                                                     "eyes": "green", "clothing": "denim jacket"})
        gym = studio.create_appearance(s, user=user, character=character, name="gym",
                                       fields={"clothing": "running gear", "settings": "indoor track"})
        assert canonical.is_canonical and not gym.is_canonical
        look = studio.merged_look(canonical, gym)
        built = studio.build_prompt(persona=Persona(age=27, style="minimal Scandinavian"), look=look,
                                    brief="stretching before a run", style="fitness")
        for words in ("27 years old", "oval face, freckles", "hair: auburn bob", "wearing running gear",
                      "setting: indoor track", "minimal Scandinavian", "stretching before a run", "athletic wear"):
            assert words in built.prompt
        assert "denim jacket" not in built.prompt
        assert "nsfw" in built.negative_prompt
        with pytest.raises(InvalidInput, match="adult content"):
            studio.request_generation(s, user=user, req=studio.GenerationRequest(character_id=ava.id,
                                                                                 brief="nude beach"))
        with pytest.raises(Conflict):
            studio.create_appearance(s, user=user, character=character, name="gym", fields={})


def test_file_paths_cannot_escape_the_media_folder(runtime, owner):
    asset_id, _ = _ingest(runtime, None, image_bytes(), owner)
    with runtime.db.session() as s:
        asset = s.get(Asset, asset_id)
        asset.path = "../../secret_key"
        with pytest.raises(MediaRejected):
            vault.file_path(runtime.settings, asset)
        s.rollback()
    assert Path(runtime.settings.media_dir).is_dir()


def test_reference_photos_go_with_their_character(runtime, owner, make_character):
    from ainfluencer.services import characters as characters_svc

    ava = make_character(owner)
    statement = "Eileen Collins agreed in writing on 2026-01-05 to this photo being the face reference."
    with runtime.db.session() as s:
        photo = studio.add_reference_photo(s, user=s.get(User, owner.id), settings=runtime.settings,
                                           character=s.get(Character, ava.id), data=astronaut_bytes(),
                                           filename="me.jpg", consent_statement=statement, consent_confirmed=True)
        ref_id = photo.asset_id
    kept_id, _ = _ingest(runtime, ava, image_bytes(), owner)
    ref_path = runtime.settings.media_dir / _asset(runtime, ref_id).path
    with runtime.db.session() as s:
        # Deleting the character purges its reference photos (and their files) in the same transaction.
        characters_svc.delete_character(s, user=s.get(User, owner.id), character=s.get(Character, ava.id),
                                        settings=runtime.settings)
    assert not ref_path.exists()
    with runtime.db.session() as s:
        assert s.get(Asset, ref_id) is None
        kept = s.get(Asset, kept_id)
        assert kept is not None and kept.character_id is None  # other content stays, unassigned

"""Helpers shared by the automation tests (imported by name; conftest holds the fixtures)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from ainfluencer.db.models import Character, GeneratedText, Job, User
from ainfluencer.db.models_automation import AutomationRule, AutomationRun
from ainfluencer.db.models_media import Asset, AssetKind, AssetSource, ReviewState
from ainfluencer.db.models_publishing import Publication, SocialAccount
from ainfluencer.jobs import runner
from ainfluencer.runtime import Runtime
from ainfluencer.services import automation


@dataclass
class AutoWorld:
    """A signed-up owner, one character, a Telegram and an Instagram account."""

    runtime: Runtime
    user: User
    character_id: int
    telegram_id: int
    instagram_id: int

    def user_row(self, s: Any) -> User:
        u = s.get(User, self.user.id)
        assert u is not None
        return u

    def create(self, **spec: Any) -> int:
        """Save a rule through the service; returns its id."""
        now = spec.pop("now", None)
        with self.runtime.db.session() as s:
            spec.setdefault("character_id", self.character_id)
            spec.setdefault("name", "test rule")
            rule = automation.create_rule(s, user=self.user_row(s), spec=automation.RuleSpec(**spec), now=now)
            return rule.id

    def rule(self, rule_id: int) -> AutomationRule:
        with self.runtime.db.session() as s:
            rule = s.get(AutomationRule, rule_id)
            assert rule is not None
            return rule

    def runs(self, rule_id: int) -> list[AutomationRun]:
        with self.runtime.db.session() as s:
            return list(s.scalars(select(AutomationRun).where(AutomationRun.rule_id == rule_id)
                                  .order_by(AutomationRun.id)))

    def set_status(self, status: str) -> None:
        with self.runtime.db.session() as s:
            character = s.get(Character, self.character_id)
            assert character is not None
            character.status = status  # type: ignore[assignment]

    def add_asset(self, *, caption: str = "", state: ReviewState = ReviewState.in_review, name: str = "a.jpg",
                  character_id: int | None = None) -> int:
        """An image asset row with a real (tiny) file in the media folder."""
        path = self.runtime.settings.media_dir / "auto" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\xff\xd8\xff" + b"0" * 2045)
        with self.runtime.db.session() as s:
            asset = Asset(character_id=character_id or self.character_id, kind=AssetKind.image,
                          source=AssetSource.generated, sha256=name.ljust(64, "0")[:64], path=f"auto/{name}",
                          mime="image/jpeg", size=2048, width=64, height=64, caption=caption, review_state=state)
            s.add(asset)
            s.flush()
            return asset.id

    def approve(self, asset_id: int) -> None:
        from ainfluencer.services import vault

        with self.runtime.db.session() as s:
            asset = s.get(Asset, asset_id)
            assert asset is not None
            vault.set_review_state(s, user=self.user_row(s), asset=asset, state="approved")

    def counts(self) -> dict[str, int]:
        """Rows in the tables a dry run must not touch."""
        with self.runtime.db.session() as s:
            return {m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)  # type: ignore[attr-defined]
                    for m in (Publication, Asset, Job, GeneratedText, AutomationRun)}

    def run_jobs(self, kind: str = automation.JOB_KIND) -> int:
        """Run queued jobs of one kind in this process; returns how many ran."""
        ran = 0
        for _ in range(20):
            job_id = runner.claim_next(self.runtime, worker="test", kinds=[kind])
            if job_id is None:
                return ran
            runner.execute(self.runtime, job_id, worker="test")
            ran += 1
        raise AssertionError("automation jobs kept coming")


def add_account(s: Any, character_id: int, platform: str, handle: str) -> int:
    account = SocialAccount(character_id=character_id, platform=platform, platform_account_id=f"{platform}-{handle}",
                            handle=handle)
    s.add(account)
    s.flush()
    return account.id


CAPTION_STEPS = [
    {"action": "generate", "content": "caption", "template": "tip", "platform": "telegram"},
    {"action": "review"},
    {"action": "schedule", "platforms": ["telegram"]},
]

"""studio voice and video: per-character voice settings, video projects

Voice settings are one JSON column on ``character_media_settings`` (engine, speaker, speed, pitch,
style, seed). Voice clips and videos are ``studio.voice`` / ``studio.video`` jobs whose results are
vault assets, so "video projects" need no table of their own.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows get {} (the defaults) through a temporary server default, dropped again so the
    # table matches the model, where the default is applied by SQLAlchemy on insert.
    with op.batch_alter_table('character_media_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voice', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    with op.batch_alter_table('character_media_settings', schema=None) as batch_op:
        batch_op.alter_column('voice', existing_type=sa.JSON(), existing_nullable=False, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('character_media_settings', schema=None) as batch_op:
        batch_op.drop_column('voice')

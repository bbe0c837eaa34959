"""posts: drafts with per-network variants, their review trail and comments

A post names media by vault asset id only. ``post_events`` records every state change with who
and when; ``post_comments`` holds the discussion while a post is reviewed.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 07:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

STATUSES = ('draft', 'in_review', 'changes_requested', 'approved', 'rejected', 'scheduled', 'published')


def upgrade() -> None:
    op.create_table('posts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('character_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum(*STATUSES, name='poststatus', native_enum=False, length=24), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('first_comment', sa.Text(), nullable=False),
    sa.Column('variants', sa.JSON(), nullable=False),
    sa.Column('asset_ids', sa.JSON(), nullable=False),
    sa.Column('alt_texts', sa.JSON(), nullable=False),
    sa.Column('account_ids', sa.JSON(), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('require_alt_text', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=24), nullable=False),
    sa.Column('generated_text_id', sa.Integer(), nullable=True),
    sa.Column('automation_run_id', sa.Integer(), nullable=True),
    sa.Column('group_key', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['character_id'], ['characters.id'], name=op.f('fk_posts_character_id_characters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['generated_text_id'], ['generated_texts.id'], name=op.f('fk_posts_generated_text_id_generated_texts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['automation_run_id'], ['automation_runs.id'], name=op.f('fk_posts_automation_run_id_automation_runs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_posts_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posts'))
    )
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.create_index('ix_posts_character_status', ['character_id', 'status'], unique=False)
        batch_op.create_index('ix_posts_status_updated', ['status', 'updated_at'], unique=False)

    op.create_table('post_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=24), nullable=False),
    sa.Column('to_status', sa.String(length=24), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], name=op.f('fk_post_events_post_id_posts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_post_events_actor_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_post_events'))
    )
    with op.batch_alter_table('post_events', schema=None) as batch_op:
        batch_op.create_index('ix_post_events_post_at', ['post_id', 'at'], unique=False)

    op.create_table('post_comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], name=op.f('fk_post_comments_post_id_posts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_post_comments_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_post_comments'))
    )
    with op.batch_alter_table('post_comments', schema=None) as batch_op:
        batch_op.create_index('ix_post_comments_post_at', ['post_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('post_comments', schema=None) as batch_op:
        batch_op.drop_index('ix_post_comments_post_at')
    op.drop_table('post_comments')
    with op.batch_alter_table('post_events', schema=None) as batch_op:
        batch_op.drop_index('ix_post_events_post_at')
    op.drop_table('post_events')
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index('ix_posts_status_updated')
        batch_op.drop_index('ix_posts_character_status')
    op.drop_table('posts')

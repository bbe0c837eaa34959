"""academy: per-person lesson progress and owner-written team lessons

Built-in courses are Markdown files in the package; only what people do with them (progress, quiz
answers) and the lessons owners write for their team live in the database. ``workspace_id`` on team
lessons is NULL (installation-wide) until workspaces exist.

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-07 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('academy_progress',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('lesson_key', sa.String(length=200), nullable=False),
    sa.Column('quiz_answer', sa.Integer(), nullable=True),
    sa.Column('quiz_correct', sa.Boolean(), nullable=True),
    sa.Column('quiz_attempts', sa.Integer(), nullable=False),
    sa.Column('quiz_answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_academy_progress_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_academy_progress')),
    sa.UniqueConstraint('user_id', 'lesson_key', name=op.f('uq_academy_progress_user_id'))
    )
    op.create_table('academy_team_lessons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('do_it_now_label', sa.String(length=200), nullable=False),
    sa.Column('do_it_now_href', sa.String(length=300), nullable=False),
    sa.Column('quiz', sa.JSON(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_academy_team_lessons_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], name=op.f('fk_academy_team_lessons_updated_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_academy_team_lessons'))
    )
    with op.batch_alter_table('academy_team_lessons', schema=None) as batch_op:
        batch_op.create_index('ix_academy_team_lessons_workspace', ['workspace_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('academy_team_lessons', schema=None) as batch_op:
        batch_op.drop_index('ix_academy_team_lessons_workspace')
    op.drop_table('academy_team_lessons')
    op.drop_table('academy_progress')

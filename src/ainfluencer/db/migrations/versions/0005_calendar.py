"""calendar: posting slots, account calendar settings, publication metrics

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('posting_slots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('character_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('weekdays', sa.JSON(), nullable=False),
    sa.Column('hour', sa.Integer(), nullable=False),
    sa.Column('minute', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['social_accounts.id'], name=op.f('fk_posting_slots_account_id_social_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['character_id'], ['characters.id'], name=op.f('fk_posting_slots_character_id_characters'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posting_slots'))
    )
    with op.batch_alter_table('posting_slots', schema=None) as batch_op:
        batch_op.create_index('ix_posting_slots_character_account', ['character_id', 'account_id'], unique=False)

    op.create_table('account_calendar_settings',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('min_gap_minutes', sa.Integer(), nullable=False),
    sa.Column('max_per_day', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['social_accounts.id'], name=op.f('fk_account_calendar_settings_account_id_social_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_account_calendar_settings'))
    )
    op.create_table('publication_metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('publication_id', sa.Integer(), nullable=False),
    sa.Column('likes', sa.Integer(), nullable=False),
    sa.Column('comments', sa.Integer(), nullable=False),
    sa.Column('shares', sa.Integer(), nullable=False),
    sa.Column('views', sa.Integer(), nullable=False),
    sa.Column('collected_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['publication_id'], ['publications.id'], name=op.f('fk_publication_metrics_publication_id_publications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_publication_metrics'))
    )
    with op.batch_alter_table('publication_metrics', schema=None) as batch_op:
        batch_op.create_index('ix_publication_metrics_publication_collected', ['publication_id', 'collected_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('publication_metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_publication_metrics_publication_collected')

    op.drop_table('publication_metrics')
    op.drop_table('account_calendar_settings')
    with op.batch_alter_table('posting_slots', schema=None) as batch_op:
        batch_op.drop_index('ix_posting_slots_character_account')

    op.drop_table('posting_slots')

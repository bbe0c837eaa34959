"""security data: webhook deliveries keep status and timing only

A delivery used to record the first 200 characters of the endpoint's answer and the network
error's text, which let a webhook probe hosts and ports. The log now keeps the HTTP status and
the time taken; what was stored before is replaced by the status alone.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('duration_ms', sa.Integer(), nullable=True))
    op.execute(
        "UPDATE webhook_deliveries SET last_error = 'HTTP ' || CAST(response_status AS VARCHAR(8)) "
        "WHERE last_error <> '' AND response_status IS NOT NULL"
    )
    op.execute(
        "UPDATE webhook_deliveries SET last_error = 'could not deliver' "
        "WHERE last_error <> '' AND response_status IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_column('duration_ms')

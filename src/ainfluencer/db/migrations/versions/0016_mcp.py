"""mcp: auto-approval flag and a per-token call bucket on api_tokens

``auto_approve`` is granted only by the owner (signed in, never with a token); posts an assistant
creates through MCP land approved instead of in review when it is set. ``mcp_tokens`` and
``mcp_tokens_at`` hold the token bucket that limits MCP tool calls per token across restarts and
replicas.

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-07 07:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auto_approve', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('mcp_tokens', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('mcp_tokens_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('mcp_tokens_at')
        batch_op.drop_column('mcp_tokens')
        batch_op.drop_column('auto_approve')

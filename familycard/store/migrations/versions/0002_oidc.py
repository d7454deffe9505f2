"""oidc: pending sign-ins at an OpenID provider (state, PKCE verifier, nonce)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_requests",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.String(length=8), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("next_url", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_hash"),
    )
    with op.batch_alter_table("oidc_requests", schema=None) as batch_op:
        batch_op.create_index("ix_oidc_requests_created", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("oidc_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_oidc_requests_created")

    op.drop_table("oidc_requests")

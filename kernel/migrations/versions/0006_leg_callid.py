"""A leg's queue_log call id (the caller's channel in that queue), so calls of an AMI gap recovered from queue_log are
never stored twice.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call_legs') as batch:
        batch.add_column(sa.Column('callid', sa.String(length=64), nullable=True))
    op.create_index('ix_call_legs_callid', 'call_legs', ['callid'])


def downgrade() -> None:
    op.drop_index('ix_call_legs_callid', table_name='call_legs')
    with op.batch_alter_table('call_legs') as batch:
        batch.drop_column('callid')

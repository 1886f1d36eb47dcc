"""Call legs: a call as the sequence of its queue visits and agents, so per-queue and per-agent figures add up legs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('call_legs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('queue', sa.String(length=80), nullable=True),
    sa.Column('agent', sa.String(length=120), nullable=True),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('wait_s', sa.Float(), nullable=True),
    sa.Column('talk_s', sa.Float(), nullable=True),
    sa.Column('hold_s', sa.Float(), nullable=False),
    sa.Column('ended_by', sa.String(length=30), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_call_legs_call_id', 'call_legs', ['call_id'])
    op.create_index('ix_call_legs_queue_enqueued', 'call_legs', ['queue', 'enqueued_at'])


def downgrade() -> None:
    op.drop_index('ix_call_legs_queue_enqueued', table_name='call_legs')
    op.drop_index('ix_call_legs_call_id', table_name='call_legs')
    op.drop_table('call_legs')

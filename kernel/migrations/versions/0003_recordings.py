"""Recordings index and the log of every access to a recording.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recordings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('linkedid', sa.String(length=64), nullable=False),
    sa.Column('queue', sa.String(length=80), nullable=True),
    sa.Column('agent', sa.String(length=120), nullable=True),
    sa.Column('caller_number', sa.String(length=80), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('key', sa.String(length=400), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('encrypted', sa.Boolean(), nullable=False),
    sa.Column('paused', sa.JSON(), nullable=False),
    sa.Column('legal_hold', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recordings_linkedid'), ['linkedid'], unique=False)
        batch_op.create_index(batch_op.f('ix_recordings_agent'), ['agent'], unique=False)
        batch_op.create_index(batch_op.f('ix_recordings_caller_number'), ['caller_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_recordings_started_at'), ['started_at'], unique=False)
    op.create_table('recording_access',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('login', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('remote_addr', sa.String(length=80), nullable=True),
    sa.Column('detail', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('recording_access', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recording_access_recording_id'), ['recording_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recording_access_at'), ['at'], unique=False)


def downgrade() -> None:
    op.drop_table('recording_access')
    op.drop_table('recordings')

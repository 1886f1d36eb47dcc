"""Dispositions move from the call to their own table, one per agent and call: a transferred call is wrapped up by each
agent who worked it, and a disposition can be saved before the call (still going on with another agent) is stored.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'wrapups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('linkedid', sa.String(length=64), nullable=False),
        sa.Column('agent', sa.String(length=120), nullable=False),
        sa.Column('disposition', sa.String(length=80), nullable=False),
        sa.Column('notes', sa.Text(), nullable=False),
        sa.Column('saved_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('linkedid', 'agent'),
    )
    op.create_index('ix_wrapups_linkedid', 'wrapups', ['linkedid'])
    op.execute(
        "insert into wrapups (linkedid, agent, disposition, notes, saved_at) "
        "select linkedid, agent, disposition, coalesce(notes, ''), ended_at from calls where disposition is not null and agent is not null"
    )
    with op.batch_alter_table('calls') as batch:
        batch.drop_column('disposition')
        batch.drop_column('notes')


def downgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.add_column(sa.Column('disposition', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('notes', sa.Text(), nullable=True))
    op.execute(
        "update calls set disposition = (select w.disposition from wrapups w where w.linkedid = calls.linkedid and w.agent = calls.agent), "
        "notes = (select w.notes from wrapups w where w.linkedid = calls.linkedid and w.agent = calls.agent)"
    )
    op.drop_index('ix_wrapups_linkedid', table_name='wrapups')
    op.drop_table('wrapups')

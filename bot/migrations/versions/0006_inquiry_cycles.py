"""finished answer cycles of reopened inquiries

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:40:00
"""

from alembic import op
import sqlalchemy as sa
import bot.storage


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inquiry_cycles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inquiry_id', sa.Integer(), nullable=False),
    sa.Column('cycle', sa.Integer(), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=False),
    sa.Column('clock_started_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('due_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('answered_by', sa.String(length=64), nullable=True),
    sa.Column('escalation_level', sa.Integer(), server_default='0', nullable=False),
    sa.Column('ended_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['inquiry_id'], ['inquiries.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('inquiry_id', 'cycle', name='uq_inquiry_cycles_inquiry_cycle')
    )
    with op.batch_alter_table('inquiry_cycles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inquiry_cycles_inquiry_id'), ['inquiry_id'], unique=False)
    # Inquiries reopened before this revision kept only their current cycle; their earlier cycles are gone.


def downgrade() -> None:
    with op.batch_alter_table('inquiry_cycles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inquiry_cycles_inquiry_id'))

    op.drop_table('inquiry_cycles')

"""sla clock cycles and alerts

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 19:45:13.766724
"""

from alembic import op
import sqlalchemy as sa
import bot.storage


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inquiry_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('level', sa.Integer(), nullable=True),
    sa.Column('fire_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('delivered_at', bot.storage.AwareDateTime(timezone=True), nullable=True),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['inquiry_id'], ['inquiries.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('inquiry_id', 'key', name='uq_alerts_inquiry_key')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_inquiry_id'), ['inquiry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_recorded_at'), ['recorded_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_status'), ['status'], unique=False)

    with op.batch_alter_table('inquiries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cycle', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('clock_started_at', bot.storage.AwareDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('next_alert_at', bot.storage.AwareDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('escalation_level', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index(batch_op.f('ix_inquiries_next_alert_at'), ['next_alert_at'], unique=False)

    # Inquiries registered before this revision: their clock started at receipt, and the scheduler
    # must look at the open ones on its first sweep so nothing due is skipped.
    op.execute("UPDATE inquiries SET clock_started_at = received_at")
    op.execute("UPDATE inquiries SET next_alert_at = received_at WHERE status = 'open'")


def downgrade() -> None:
    with op.batch_alter_table('inquiries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inquiries_next_alert_at'))
        batch_op.drop_column('escalation_level')
        batch_op.drop_column('next_alert_at')
        batch_op.drop_column('clock_started_at')
        batch_op.drop_column('cycle')

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_status'))
        batch_op.drop_index(batch_op.f('ix_alerts_recorded_at'))
        batch_op.drop_index(batch_op.f('ix_alerts_inquiry_id'))

    op.drop_table('alerts')

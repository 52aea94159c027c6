"""initial schema: inquiries and messages

Revision ID: 0001
Revises: 
Create Date: 2026-12-03 19:17:51.566221
"""

from alembic import op
import sqlalchemy as sa
import bot.storage


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inquiries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('sender', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=False),
    sa.Column('department_confidence', sa.Float(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('matched', sa.JSON(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('received_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('due_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('last_message_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('inquiries', schema=None) as batch_op:
        batch_op.create_index('ix_inquiries_conversation', ['channel', 'account', 'sender', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_inquiries_department'), ['department'], unique=False)
        batch_op.create_index(batch_op.f('ix_inquiries_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_inquiries_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_inquiries_severity'), ['severity'], unique=False)
        batch_op.create_index(batch_op.f('ix_inquiries_status'), ['status'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inquiry_id', sa.Integer(), nullable=True),
    sa.Column('reply_to_id', sa.Integer(), nullable=True),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('sender', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=True),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('platform_msg_id', sa.String(length=64), nullable=True),
    sa.Column('dedup_key', sa.String(length=255), nullable=True),
    sa.Column('platform_created_at', bot.storage.AwareDateTime(timezone=True), nullable=True),
    sa.Column('recorded_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['inquiry_id'], ['inquiries.id'], ),
    sa.ForeignKeyConstraint(['reply_to_id'], ['messages.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'dedup_key', name='uq_messages_channel_dedup_key')
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_inquiry_id'), ['inquiry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_recorded_at'), ['recorded_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_reply_to_id'), ['reply_to_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_reply_to_id'))
        batch_op.drop_index(batch_op.f('ix_messages_recorded_at'))
        batch_op.drop_index(batch_op.f('ix_messages_inquiry_id'))

    op.drop_table('messages')
    with op.batch_alter_table('inquiries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inquiries_status'))
        batch_op.drop_index(batch_op.f('ix_inquiries_severity'))
        batch_op.drop_index(batch_op.f('ix_inquiries_received_at'))
        batch_op.drop_index(batch_op.f('ix_inquiries_due_at'))
        batch_op.drop_index(batch_op.f('ix_inquiries_department'))
        batch_op.drop_index('ix_inquiries_conversation')

    op.drop_table('inquiries')

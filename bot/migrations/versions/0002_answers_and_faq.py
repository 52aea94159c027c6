"""answers and the FAQ knowledge base

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 19:34:18.144033
"""

from alembic import op
import sqlalchemy as sa
import bot.storage


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('faq_entries',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('alternates', sa.JSON(), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('updated_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('inquiries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answered_at', bot.storage.AwareDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('answered_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('faq_id', sa.String(length=64), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('inquiries', schema=None) as batch_op:
        batch_op.drop_column('faq_id')
        batch_op.drop_column('answered_by')
        batch_op.drop_column('answered_at')

    op.drop_table('faq_entries')

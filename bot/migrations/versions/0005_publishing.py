"""publishing desk

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 04:55:04.497441
"""

from alembic import op
import sqlalchemy as sa
import bot.storage


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pushes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('planned_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('outside_window_reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.String(length=64), nullable=True),
    sa.Column('published_at', bot.storage.AwareDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pushes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pushes_planned_at'), ['planned_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pushes_status'), ['status'], unique=False)

    op.create_table('posts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=False),
    sa.Column('important', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('author', sa.String(length=64), nullable=False),
    sa.Column('created_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', bot.storage.AwareDateTime(timezone=True), nullable=True),
    sa.Column('screening', sa.JSON(), nullable=False),
    sa.Column('approved_by', sa.String(length=64), nullable=True),
    sa.Column('approved_at', bot.storage.AwareDateTime(timezone=True), nullable=True),
    sa.Column('approval_note', sa.Text(), nullable=False),
    sa.Column('proofread_by', sa.String(length=64), nullable=True),
    sa.Column('proofread_at', bot.storage.AwareDateTime(timezone=True), nullable=True),
    sa.Column('proofread_note', sa.Text(), nullable=False),
    sa.Column('push_id', sa.Integer(), nullable=True),
    sa.Column('published_at', bot.storage.AwareDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['push_id'], ['pushes.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_posts_department'), ['department'], unique=False)
        batch_op.create_index(batch_op.f('ix_posts_push_id'), ['push_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_posts_status'), ['status'], unique=False)

    op.create_table('post_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('duration_seconds', sa.Float(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('scanned_by', sa.String(length=255), nullable=False),
    sa.Column('scanned_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('uploaded_by', sa.String(length=64), nullable=False),
    sa.Column('uploaded_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('post_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_post_attachments_post_id'), ['post_id'], unique=False)

    op.create_table('post_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('reviewer', sa.String(length=64), nullable=False),
    sa.Column('at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('checks', sa.JSON(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('post_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_post_reviews_post_id'), ['post_id'], unique=False)

    op.create_table('publication_register',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('push_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('platform_id', sa.String(length=128), nullable=False),
    sa.Column('title', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=False),
    sa.Column('important', sa.Boolean(), nullable=False),
    sa.Column('published_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.String(length=64), nullable=False),
    sa.Column('trail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], ),
    sa.ForeignKeyConstraint(['push_id'], ['pushes.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('post_id', 'channel', name='uq_publication_register_post_channel')
    )
    with op.batch_alter_table('publication_register', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_publication_register_post_id'), ['post_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_publication_register_published_at'), ['published_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_publication_register_push_id'), ['push_id'], unique=False)

    op.create_table('secrecy_forms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('contains_secrets', sa.Boolean(), nullable=False),
    sa.Column('opinion', sa.Text(), nullable=False),
    sa.Column('filled_by', sa.String(length=64), nullable=False),
    sa.Column('filled_at', bot.storage.AwareDateTime(timezone=True), nullable=False),
    sa.Column('approved_by', sa.String(length=64), nullable=True),
    sa.Column('approved_at', bot.storage.AwareDateTime(timezone=True), nullable=True),
    sa.Column('leader_opinion', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('post_id', name='uq_secrecy_forms_post')
    )


def downgrade() -> None:
    op.drop_table('secrecy_forms')
    with op.batch_alter_table('publication_register', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_publication_register_push_id'))
        batch_op.drop_index(batch_op.f('ix_publication_register_published_at'))
        batch_op.drop_index(batch_op.f('ix_publication_register_post_id'))

    op.drop_table('publication_register')
    with op.batch_alter_table('post_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_post_reviews_post_id'))

    op.drop_table('post_reviews')
    with op.batch_alter_table('post_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_post_attachments_post_id'))

    op.drop_table('post_attachments')
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_posts_status'))
        batch_op.drop_index(batch_op.f('ix_posts_push_id'))
        batch_op.drop_index(batch_op.f('ix_posts_department'))

    op.drop_table('posts')
    with op.batch_alter_table('pushes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pushes_status'))
        batch_op.drop_index(batch_op.f('ix_pushes_planned_at'))

    op.drop_table('pushes')

"""combined notice: one mise en demeure letter per customer and registered-post batch

Revision ID: 0006_letter
Revises: 0005
Create Date: 2026-11-24 20:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0006_letter'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deadline_days', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('recovery_indemnity', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.add_column(sa.Column('as_of', sa.Date(), nullable=True))

    with op.batch_alter_table('letter', schema=None) as batch_op:
        batch_op.alter_column('invoice_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('batch_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_letter_batch', 'messagebatch', ['batch_id'], ['id'])
        batch_op.create_unique_constraint('uq_letter_batch', ['batch_id'])

    op.create_table('letterinvoice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('letter_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('step_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('principal_cents', sa.BigInteger(), nullable=False),
    sa.Column('interest_cents', sa.BigInteger(), nullable=False),
    sa.Column('indemnity_cents', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id'], ),
    sa.ForeignKeyConstraint(['letter_id'], ['letter.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('invoice_id', 'step_key', name='uq_letterinvoice')
    )
    with op.batch_alter_table('letterinvoice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_letterinvoice_invoice_id'), ['invoice_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_letterinvoice_letter_id'), ['letter_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('letterinvoice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_letterinvoice_letter_id'))
        batch_op.drop_index(batch_op.f('ix_letterinvoice_invoice_id'))
    op.drop_table('letterinvoice')
    # Combined letters have no single invoice: they cannot survive the downgrade.
    op.execute("DELETE FROM letter WHERE invoice_id IS NULL")
    with op.batch_alter_table('letter', schema=None) as batch_op:
        batch_op.drop_constraint('uq_letter_batch', type_='unique')
        batch_op.drop_constraint('fk_letter_batch', type_='foreignkey')
        batch_op.drop_column('batch_id')
        batch_op.alter_column('invoice_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.drop_column('as_of')
        batch_op.drop_column('recovery_indemnity')
        batch_op.drop_column('deadline_days')

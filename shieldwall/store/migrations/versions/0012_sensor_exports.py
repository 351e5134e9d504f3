"""Sensor exports (outputs/sensors): the Suricata rule id each exported indicator keeps.

A sensor's alerts name a rule by `sid`; the same indicator must keep the same sid across
exports (and restarts) so an alert maps back to it, and its `rev` grows when the indicator
changes. `fingerprint` is what the rule was last written from.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "sensor_sids",
        sa.Column("indicator_id", sa.String(300), primary_key=True),
        sa.Column("sid", sa.BigInteger, nullable=False),
        sa.Column("rev", sa.Integer, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.UniqueConstraint("sid", name="uq_sensor_sids_sid"),
    )


def downgrade() -> None:
    op.drop_table("sensor_sids")

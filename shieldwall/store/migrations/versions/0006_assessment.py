"""Assessment: the correlation index (value -> objects, links, groups) and the
append-only consultation audit log.

Revision ID: 0006
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0002"

SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_APPEND_ONLY = "consult_log is append-only: decisions are never updated or deleted"


def upgrade() -> None:
    op.create_table(
        "corr_objects",
        sa.Column("obj_id", sa.String(300), primary_key=True),
        sa.Column("obj_type", sa.String(50), nullable=False),
        sa.Column("member", sa.String(200), nullable=False),
        sa.Column("ts_us", sa.BigInteger, nullable=False),
        sa.Column("grp", sa.String(300), nullable=False),
    )
    op.create_index("ix_corr_objects_grp", "corr_objects", ["grp"])
    op.create_table(
        "corr_groups",
        sa.Column("grp", sa.String(300), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
    )
    op.create_table(
        "corr_values",
        sa.Column("kind", sa.String(30), primary_key=True),
        sa.Column("value", sa.String(600), primary_key=True),
        sa.Column("obj_id", sa.String(300), primary_key=True),
        sa.Column("ts_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "corr_value_stats",
        sa.Column("kind", sa.String(30), primary_key=True),
        sa.Column("value", sa.String(600), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("capped", sa.String(30)),
    )
    op.create_table(
        "corr_links",
        sa.Column("a", sa.String(300), primary_key=True),
        sa.Column("b", sa.String(300), primary_key=True),
        sa.Column("kind", sa.String(30), primary_key=True),
        sa.Column("value", sa.String(600), primary_key=True),
    )
    op.create_index("ix_corr_links_b", "corr_links", ["b"])
    op.create_index("ix_corr_links_value", "corr_links", ["kind", "value"])
    op.create_table(
        "consult_log",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("recorded_us", sa.BigInteger, nullable=False),
        sa.Column("campaign_id", sa.String(300), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(50), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("recommendation", sa.String(50), nullable=False),
        sa.Column("policy_version", sa.String(100), nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_consult_log_campaign", "consult_log", ["campaign_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION consult_log_refuse() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION '{_APPEND_ONLY}'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER consult_log_append_only BEFORE UPDATE OR DELETE ON consult_log "
            "FOR EACH ROW EXECUTE FUNCTION consult_log_refuse()"
        )
        op.execute(
            "CREATE TRIGGER consult_log_no_truncate BEFORE TRUNCATE ON consult_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION consult_log_refuse()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER consult_log_no_{verb.lower()} BEFORE {verb} ON consult_log "
                f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE consult_log")
        op.execute("DROP FUNCTION IF EXISTS consult_log_refuse()")
    else:
        op.drop_table("consult_log")
    for name in ("corr_links", "corr_value_stats", "corr_values", "corr_groups", "corr_objects"):
        op.drop_table(name)

"""Model definition: naming, type map, the id rule, options and their errors."""

import datetime as dt
import uuid
from decimal import Decimal
from typing import Optional

import pytest

from dataflow import DataFlow, Field
from dataflow.errors import ModelDefinitionError, ValidationError, WorkflowError
from dataflow.models.naming import shorten, table_name_for
from dataflow.nodes import registry


@pytest.mark.parametrize("cls,table", [("User", "users"), ("Category", "categories"), ("Person", "people"),
                                       ("Status", "statuses"), ("UserActivity", "user_activities"),
                                       ("HTTPRequest", "http_requests"), ("Box", "boxes"), ("Day", "days")])
def test_table_names(cls, table):
    assert table_name_for(cls) == table


def test_shortening_never_collides():
    a = "x" * 70 + "_alpha"
    b = "x" * 70 + "_beta"
    assert shorten(a, 63) != shorten(b, 63) and len(shorten(a, 63)) == 63


def test_long_model_names_get_distinct_tables():
    db = DataFlow(":memory:")
    A = type("VeryLongModelNameThatGoesOnAndOnForeverAndEverAndEverAlphaRecord", (), {"__annotations__": {"a": int}})
    B = type("VeryLongModelNameThatGoesOnAndOnForeverAndEverAndEverBetaRecord", (), {"__annotations__": {"a": int}})
    db.model(A)
    db.model(B)
    t1, t2 = db.list_tables()
    assert t1 != t2 and len(t1) <= 63 and len(t2) <= 63
    assert db.express_sync.create(A.__name__, {"a": 1})["id"] == 1
    assert db.express_sync.create(B.__name__, {"a": 2})["id"] == 1


def test_field_types_and_nullability():
    db = DataFlow(":memory:")

    @db.model
    class Everything:
        i: int
        f: float
        b: bool
        s: str
        by: bytes
        d: dt.datetime
        day: dt.date
        dec: Decimal
        u: uuid.UUID
        j: dict
        l: list[str]
        o: Optional[int] = None
        p: str | None = None
    fields = db.get_model_fields("Everything")
    assert fields["o"]["nullable"] and fields["p"]["nullable"] and not fields["i"]["nullable"]
    assert fields["created_at"]["managed"] and "updated_at" in fields
    assert fields["id"]["type"] == "int"


@pytest.mark.parametrize("ann", [set, complex, "int | str", object])
def test_unsupported_annotations(ann):
    db = DataFlow(":memory:")
    ns = {"__annotations__": {"x": eval(ann) if isinstance(ann, str) else ann}}
    with pytest.raises(ModelDefinitionError):
        db.model(type("Bad", (), ns))


def test_primary_key_must_be_id():
    db = DataFlow(":memory:")
    with pytest.raises(ModelDefinitionError, match="primary key must be a field named 'id'"):
        db.model(type("A", (), {"__annotations__": {"user_id": str}, "__dataflow__": {"primary_key": "user_id"}}))
    with pytest.raises(ModelDefinitionError, match="'id'"):
        db.model(type("B", (), {"__annotations__": {"user_id": str}, "user_id": Field(primary_key=True)}))
    # a plain user_id column is fine
    db.model(type("C", (), {"__annotations__": {"user_id": str}}))


@pytest.mark.parametrize("opts", [{"bogus": 1}, {"indexes": [{"fields": ["nope"]}]}, {"unique": ["nope"]},
                                  {"indexes": ["x"]}])
def test_bad_options(opts):
    db = DataFlow(":memory:")
    with pytest.raises(ModelDefinitionError):
        db.model(type("M", (), {"__annotations__": {"a": int}, "__dataflow__": opts}))


def _fields(db, name, annotations, **attrs):
    db.model(type(name, (), {"__annotations__": annotations, **attrs}))
    return db.get_model_fields(name)


def test_managed_fields_may_be_declared_and_stay_managed():
    db = DataFlow(":memory:")
    plain = _fields(db, "Plain", {"name": str}, __dataflow__={"soft_delete": True})
    declared = _fields(db, "Declared", {"name": str, "created_at": dt.datetime,
                                        "updated_at": Optional[dt.datetime], "deleted_at": dt.datetime | None},
                       __dataflow__={"soft_delete": True}, updated_at=None)
    assert list(declared) == list(plain) == ["id", "name", "created_at", "updated_at", "deleted_at"]
    assert declared == plain   # same columns, types, nullability, managed flags
    assert declared["created_at"]["managed"] and declared["deleted_at"]["managed"]


@pytest.mark.parametrize("ann", [str, int, dt.date, Optional[str], "str"])
def test_declared_managed_field_must_be_a_datetime(ann):
    db = DataFlow(":memory:")
    with pytest.raises(ModelDefinitionError, match="created_at: created_at is managed by DataFlow and holds a datetime"):
        db.model(type("M", (), {"__annotations__": {"name": str, "created_at": ann}}))


def test_declared_deleted_at_needs_soft_delete():
    db = DataFlow(":memory:")
    with pytest.raises(ModelDefinitionError, match="soft_delete"):
        db.model(type("M", (), {"__annotations__": {"name": str, "deleted_at": Optional[dt.datetime]}}))


def test_declared_managed_field_still_refuses_values():
    db = DataFlow(":memory:")

    @db.model
    class Stamp:
        name: str
        created_at: dt.datetime
        updated_at: dt.datetime

    with pytest.raises(ValidationError, match="'created_at' is managed automatically"):
        db.express_sync.create("Stamp", {"name": "a", "created_at": dt.datetime.now(dt.timezone.utc)})
    row = db.express_sync.create("Stamp", {"name": "a"})       # SQLite round trip
    assert isinstance(row["created_at"], dt.datetime) and row["created_at"].tzinfo is not None
    with pytest.raises(ValidationError, match="'updated_at' is managed automatically"):
        db.express_sync.update("Stamp", row["id"], {"updated_at": row["created_at"]})
    later = db.express_sync.update("Stamp", row["id"], {"name": "b"})
    assert later["name"] == "b" and later["updated_at"] >= row["updated_at"]
    assert db.express_sync.read("Stamp", row["id"])["created_at"] == row["created_at"]


def test_default_type_mismatch():
    db = DataFlow(":memory:")
    with pytest.raises(ModelDefinitionError, match="default"):
        db.model(type("M", (), {"__annotations__": {"a": int}, "a": "zero"}))


def test_mutable_defaults_are_copied():
    db = DataFlow(":memory:")

    @db.model
    class Bag:
        items: list[str] = []
        meta: dict = {"k": []}
    a = db.express_sync.create("Bag", {})
    a["items"].append("x")
    a["meta"]["k"].append(1)
    b = db.express_sync.create("Bag", {})
    assert b["items"] == [] and b["meta"] == {"k": []}


def test_multi_instance_isolation():
    db1 = DataFlow(":memory:")
    db2 = DataFlow(":memory:")

    @db1.model
    class User:
        name: str

    @db2.model
    class User:  # noqa: F811 - same name, other instance
        name: str
        email: str
    assert db1.name != db2.name
    db1.express_sync.create("User", {"name": "a"})
    db2.express_sync.create("User", {"name": "b", "email": "b@x"})
    assert db1.express_sync.count("User") == 1
    assert set(db2.express_sync.read("User", 1)) >= {"email"}
    assert registry.resolve("UserCreateNode", db1.name).table.db is db1
    assert registry.resolve("UserCreateNode", db2.name).table.db is db2


def test_node_name_did_you_mean():
    db = DataFlow(":memory:")

    @db.model
    class Order:
        total: int
    with pytest.raises(WorkflowError, match="did you mean OrderCreateNode"):
        registry.resolve("Order_Create")
    assert registry.resolve("OrderGetNode") is registry.resolve("OrderReadNode")
    assert sorted(db.get_generated_nodes("Order")) == sorted(
        f"Order{op}Node" for op in ("Create", "Read", "Update", "Delete", "List", "Count", "Upsert",
                                    "BulkCreate", "BulkUpdate", "BulkDelete", "BulkUpsert"))


def test_unknown_model_in_express():
    db = DataFlow(":memory:")

    @db.model
    class Order:
        total: int
    with pytest.raises(ValidationError, match="did you mean 'Order'"):
        db.express_sync.count("Ordr")

"""The conformance table of the MongoDB stand-in (``testing=True``: mongomock behind pymongo's
async API): operator / stage -> works on the stand-in (True) or is refused by DataFlow at the
call, before mongomock is asked, with ``UnsupportedFeatureError`` naming the stand-in (False).
A real server does all of them.  Every row is checked: a True row runs (and its answer is
checked where that is cheap), a False row raises; a row without a check fails the test.

Stand-in only (this is the table of the stand-in; a real server runs the same operations in the
other document tests when DATAFLOW_TEST_MONGODB_URL is set).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from dataflow import DataFlow
from dataflow import errors as E
from dataflow.adapters import MongoDBAdapter

UTC = dt.timezone.utc

CONFORMANCE = {
    # -- the model filter language, translated by the document store
    "$eq $ne $gt $gte $lt $lte on numbers and text": True,
    "$gt $lt $between on datetimes (UTC ISO text)": True,
    "$in $nin (with null)": True,
    "$like $ilike $contains $startswith $endswith (anchored $regex, $options i)": True,
    "$null $exists": True,
    "$and $or $nor $not": True,
    "$all $size $elemMatch $type (native, field names checked)": True,
    "$mod": False,
    "$gt/$lt/$between on Decimal128 (Decimal fields)": False,
    "sort by Decimal128": False,
    # -- native queries (MongoDBAdapter)
    "$regex with $options, $comment": True,
    "$text": False,
    "$jsonSchema": False,
    "$geoWithin": False,
    "$bitsAllSet $bitsAnySet $bitsAllClear $bitsAnyClear": False,
    # -- updates
    "$set $unset $inc $min $max $rename $currentDate": True,
    "$push $addToSet $pull $pullAll $pop": True,
    "upsert with $setOnInsert": True,
    "pipeline update [{$set: ...}]": True,
    "$mul": False,
    "$bit": False,
    # -- writes and indexes
    "insert_many ordered/unordered with BulkWriteError details": True,
    "bulk_write (UpdateOne/InsertOne/DeleteOne...), through the wrapper": True,
    "unique and partial unique indexes": True,
    "find_one_and_update returning the new document": True,
    # -- aggregation stages
    **dict.fromkeys(("$match", "$group", "$sort", "$limit", "$skip", "$count", "$project", "$addFields",
                     "$set (stage)", "$unwind", "$lookup", "$facet", "$bucket", "$replaceRoot", "$sample",
                     "$graphLookup"), True),
    **dict.fromkeys(("$unset (stage)", "$sortByCount", "$setWindowFields", "$unionWith", "$densify", "$fill",
                     "$bucketAuto", "$redact", "$replaceWith"), False),
    # -- sessions
    "sessions and multi-document transactions": False,
}

STAGES = {
    "$match": {"$match": {"a": {"$gte": 1}}},
    "$group": {"$group": {"_id": "$g", "s": {"$sum": "$a"}}},
    "$sort": {"$sort": {"a": -1}}, "$limit": {"$limit": 2}, "$skip": {"$skip": 1}, "$count": {"$count": "n"},
    "$project": {"$project": {"a": 1}}, "$addFields": {"$addFields": {"b": {"$add": ["$a", 1]}}},
    "$set (stage)": {"$set": {"b": 1}}, "$unwind": {"$unwind": "$t"},
    "$lookup": {"$lookup": {"from": "c", "localField": "a", "foreignField": "_id", "as": "j"}},
    "$facet": {"$facet": {"x": [{"$count": "n"}]}},
    "$bucket": {"$bucket": {"groupBy": "$a", "boundaries": [0, 2, 10], "default": "other"}},
    "$replaceRoot": {"$replaceRoot": {"newRoot": "$d"}}, "$sample": {"$sample": {"size": 1}},
    "$graphLookup": {"$graphLookup": {"from": "c", "startWith": "$a", "connectFromField": "a",
                                      "connectToField": "_id", "as": "x"}},
    "$unset (stage)": {"$unset": "a"}, "$sortByCount": {"$sortByCount": "$g"},
    "$setWindowFields": {"$setWindowFields": {"sortBy": {"a": 1}, "output": {"r": {"$rank": {}}}}},
    "$unionWith": {"$unionWith": "c"},
    "$densify": {"$densify": {"field": "a", "range": {"step": 1, "bounds": "full"}}},
    "$fill": {"$fill": {"output": {"a": {"value": 0}}}},
    "$bucketAuto": {"$bucketAuto": {"groupBy": "$a", "buckets": 2}},
    "$redact": {"$redact": "$$KEEP"}, "$replaceWith": {"$replaceWith": "$d"},
}


async def test_conformance_table_holds():
    db = DataFlow("mongodb://standin/conf", testing=True)
    ad = MongoDBAdapter("mongodb://standin/conf_native", testing=True)

    @db.model
    class P:
        price: Decimal
        n: int = 0
        name: str = ""
        tags: list = []
        at: dt.datetime | None = None
    x = db.express
    await x.create(P, {"price": Decimal("1.5"), "n": 1, "name": "Abc", "tags": ["a", "b"],
                       "at": dt.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)})
    await x.create(P, {"price": Decimal("2"), "n": 2, "name": "xyz"})
    await ad.insert_many("c", [{"_id": i, "a": i, "t": ["x", "y"][: i % 3], "g": i % 2, "d": {"k": i},
                                "s": "ab", "bits": i} for i in range(5)])

    async def count(f, expect):
        assert await x.count(P, f) == expect, f

    async def native(q, expect=None):
        n = await ad.count_documents("c", q)
        assert expect is None or n == expect, q

    async def update(u, check):
        await ad.update_one("c", {"_id": 1}, u)
        doc = await ad.find_one("c", {"_id": 1})
        assert check(doc), u

    async def unique_indexes():
        await ad.create_index("u", [("k", 1)], unique=True, partialFilterExpression={"k": {"$type": "string"}})
        await ad.insert_many("u", [{"k": None}, {"k": None}, {"k": "a"}])       # nulls skip a partial index
        with pytest.raises(E.UniqueViolationError):
            await ad.insert_one("u", {"k": "a"})

    async def insert_many_errors():
        with pytest.raises(E.BulkLoadError) as exc:
            await x.bulk_create(P, [{"id": 100, "price": 1}, {"id": 100, "price": 2}], atomic=False)
        assert (exc.value.failed_index, exc.value.rows_written) == (1, 1)
        assert (await x.bulk_create(P, [{"id": 100, "price": 1}, {"id": 101, "price": 1}],
                                    conflict_resolution="skip"))["inserted"] == 1

    async def bulk_write():
        res = await x.bulk_upsert(P, [{"id": 101, "price": 3, "n": 7}, {"id": 102, "price": 1}], conflict_on="id")
        assert (res["inserted"], res["updated"]) == (1, 1)

    async def find_one_and_update():
        row = await x.update(P, 100, {"n": 9})
        assert row["n"] == 9 and row["price"] == Decimal(1)

    async def arrays():
        await update({"$push": {"t": {"$each": ["p", "q", "r", "s"]}}, "$addToSet": {"l2": "q"}},
                     lambda d: d["t"] == ["x", "p", "q", "r", "s"] and d["l2"] == ["q"])
        await update({"$pull": {"t": "p"}, "$pullAll": {"l2": ["q"]}}, lambda d: d["t"] == ["x", "q", "r", "s"])
        await update({"$pop": {"t": 1}}, lambda d: d["t"] == ["x", "q", "r"] and d["l2"] == [])

    async def transaction():
        async with db.transaction():
            pass

    checks = {
        "$eq $ne $gt $gte $lt $lte on numbers and text":
            lambda: count({"n": {"$gte": 1, "$lt": 2, "$ne": 5}, "name": {"$gt": "A", "$lte": "Abc", "$eq": "Abc"}}, 1),
        "$gt $lt $between on datetimes (UTC ISO text)":
            lambda: count({"at": {"$gt": dt.datetime(2024, 1, 1, tzinfo=UTC),
                                  "$between": [dt.datetime(2023, 1, 1, tzinfo=UTC), dt.datetime(2025, 1, 1, tzinfo=UTC)],
                                  "$lt": dt.datetime(2024, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))}}, 0),
        "$in $nin (with null)": lambda: count({"n": {"$in": [1, None]}, "name": {"$nin": [None]}}, 1),
        "$like $ilike $contains $startswith $endswith (anchored $regex, $options i)":
            lambda: count({"name": {"$ilike": "a%", "$like": "A_c", "$contains": "b", "$startswith": "A",
                                    "$endswith": "c"}}, 1),
        "$null $exists": lambda: count({"at": {"$null": True}, "name": {"$exists": True}}, 1),
        "$and $or $nor $not": lambda: count({"$and": [{"$or": [{"n": 1}, {"n": 2}]}, {"$nor": [{"n": 2}]},
                                                      {"$not": {"name": "x"}}]}, 1),
        "$all $size $elemMatch $type (native, field names checked)":
            lambda: count({"tags": {"$all": ["a"], "$size": 2, "$elemMatch": {"$eq": "b"}}, "n": {"$type": "number"}}, 1),
        "$mod": lambda: count({"n": {"$mod": [2, 0]}}, 1),
        "$gt/$lt/$between on Decimal128 (Decimal fields)": lambda: count({"price": {"$gt": Decimal(1)}}, 2),
        "sort by Decimal128": lambda: x.list(P, order_by="price"),
        "$regex with $options, $comment": lambda: native({"s": {"$regex": "^A", "$options": "i"}, "$comment": "c"}, 5),
        "$text": lambda: native({"$text": {"$search": "ab"}}),
        "$jsonSchema": lambda: native({"$jsonSchema": {"required": ["a"]}}),
        "$geoWithin": lambda: native({"a": {"$geoWithin": {"$center": [[0, 0], 1]}}}),
        "$bitsAllSet $bitsAnySet $bitsAllClear $bitsAnyClear": lambda: native({"bits": {"$bitsAllSet": 1}}),
        "$set $unset $inc $min $max $rename $currentDate":
            lambda: update({"$set": {"z": 1}, "$unset": {"g": ""}, "$inc": {"a": 10}, "$min": {"bits": 0},
                            "$max": {"z2": 3}, "$rename": {"s": "s2"}, "$currentDate": {"when": True}},
                           lambda d: (d["z"], d["a"], d["bits"], d["z2"], d["s2"], "g" in d) == (1, 11, 0, 3, "ab", False)
                           and isinstance(d["when"], dt.datetime)),
        "$push $addToSet $pull $pullAll $pop": arrays,
        "upsert with $setOnInsert": lambda: _upsert(ad),
        "pipeline update [{$set: ...}]": lambda: update([{"$set": {"pz": 5}}], lambda d: d["pz"] == 5),
        "$mul": lambda: ad.update_one("c", {"_id": 1}, {"$mul": {"a": 2}}),
        "$bit": lambda: ad.update_one("c", {"_id": 1}, {"$bit": {"a": {"and": 1}}}),
        "insert_many ordered/unordered with BulkWriteError details": insert_many_errors,
        "bulk_write (UpdateOne/InsertOne/DeleteOne...), through the wrapper": bulk_write,
        "unique and partial unique indexes": unique_indexes,
        "find_one_and_update returning the new document": find_one_and_update,
        "sessions and multi-document transactions": transaction,
    }
    for stage, spec in STAGES.items():
        checks[stage] = (lambda spec: lambda: ad.aggregate("c", [spec]))(spec)
    assert set(checks) == set(CONFORMANCE), set(CONFORMANCE) ^ set(checks)
    for name, works in CONFORMANCE.items():
        if works:
            await checks[name]()
        else:
            with pytest.raises(E.UnsupportedFeatureError, match="stand-in"):
                await checks[name]()
    assert await ad.count_documents("c") == 5 and await x.count(P) == 5   # the refusals wrote nothing
    await db.close_async()
    await ad.close()


async def _upsert(ad):
    res = await ad.update_one("c", {"_id": 99}, {"$set": {"a": 1}, "$setOnInsert": {"new": True}}, upsert=True)
    doc = await ad.find_one("c", {"_id": 99})
    assert res["upserted_id"] == 99 and doc == {"_id": 99, "a": 1, "new": True}
    await ad.delete_one("c", {"_id": 99})

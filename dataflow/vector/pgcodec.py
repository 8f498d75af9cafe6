"""pgvector on PostgreSQL: detect or create the extension, and the asyncpg ``vector`` codec.

``_native.params`` binds a vector as float32 little-endian bytes on every dialect (the BYTEA
stored when pgvector is absent).  With pgvector the column is ``vector(n)``, so each pool
connection gets a binary codec that turns those bytes into pgvector's wire format (int16 dim,
int16 0, big-endian float4s) and back -- no text formatting or parsing of floats either way.
"""

from __future__ import annotations

import struct
import sys
from array import array

from dataflow import _native

from ..errors import DataFlowError

_vector = _native.load("vector")
_LITTLE = sys.byteorder == "little"
_HEAD = struct.Struct(">hh")


def encode(value) -> bytes:
    """float32 LE blob (what coerce produced) or any vector-like -> pgvector binary ``vector``."""
    if type(value) is bytes:
        blob = value
        if len(blob) % 4 or not blob:
            blob = _vector.pack(value)      # raises the usual message
    else:
        blob = _vector.pack(value)
    a = array("f")
    a.frombytes(blob)
    if _LITTLE:
        a.byteswap()
    return _HEAD.pack(len(a), 0) + a.tobytes()


def decode(data: bytes) -> bytes:
    """pgvector binary ``vector`` -> float32 LE blob (``_native.params.decode`` makes the list)."""
    a = array("f")
    a.frombytes(memoryview(data)[4:])
    if _LITTLE:
        a.byteswap()
    return a.tobytes()


async def register(con, schema: str) -> bool:
    """Install the codec on one asyncpg connection; False when the type does not exist (yet)."""
    try:
        await con.set_type_codec("vector", schema=schema, encoder=encode, decoder=decode, format="binary")
    except ValueError:          # "unknown type: schema.vector": the extension is not there
        return False
    return True


async def detect(db) -> str | None:
    """The schema holding pgvector's ``vector`` type, creating the extension when it is available.

    None when the server has no pgvector (or we may not create it): vectors then stay BYTEA and
    are ranked client-side.
    """
    drv = db.driver
    row = await drv.fetchrow("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                             "WHERE e.extname = 'vector'")
    if row is None:
        avail = await drv.fetchrow("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if avail is None:
            return None
        try:
            await drv.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except DataFlowError:
            return None                  # no privilege: the client path still works
        row = await drv.fetchrow("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                                 "ON n.oid = e.extnamespace WHERE e.extname = 'vector'")
        if row is None:
            return None
    return row[0]

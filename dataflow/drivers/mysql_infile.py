"""The client side of ``LOAD DATA LOCAL INFILE`` for aiomysql, sending the file in packets the
server accepts.

aiomysql's own sender (``LoadLocalFile.send_data``) reads the file in chunks of
``MAX_PACKET_LEN`` (2**24 - 1 bytes) and writes each as one packet without draining.  In the
MySQL protocol a packet whose payload is exactly 2**24 - 1 bytes means "continued in the next
packet", so for any file of 16 MiB or more the server joins the chunks into one logical packet,
which exceeds ``max_allowed_packet`` (16 MiB by default): the server logs "Got a packet bigger
than 'max_allowed_packet' bytes" and drops the connection, and the client sees "Lost connection
to MySQL server during query" or "Packet sequence number wrong".  Here each packet is at most
``CHUNK`` bytes (and below ``max_allowed_packet``), the writer is drained between packets so the
file is not copied whole into the socket buffer, and only the file this client asked for is
ever sent (a server may name any file in its request).
"""

from __future__ import annotations

import os

#: payload bytes per packet of the file stream: far below 2**24 - 1 and any max_allowed_packet
CHUNK = 256 * 1024
#: the packet header (3-byte length + sequence id) counts towards max_allowed_packet
_HEADER = 4


def connection_class(allowed_path: str, max_packet: int):
    """An aiomysql Connection class whose LOCAL INFILE requests send ``allowed_path`` only."""
    import aiomysql.connection as amc
    from pymysql.err import OperationalError

    size = max(1024, min(CHUNK, max_packet - _HEADER))
    allowed = os.path.realpath(allowed_path)

    class _Result(amc.MySQLResult):
        async def _read_load_local_packet(self, first_packet):
            conn = self.connection
            if not conn._local_infile:
                raise RuntimeError("Received LOAD_LOCAL packet but local_infile option is false.")
            name = amc.LoadLocalPacketWrapper(first_packet).filename
            if isinstance(name, bytes):
                name = name.decode("utf-8", "surrogateescape")
            try:
                if os.path.realpath(name) != allowed:
                    raise OperationalError(1017, f"the server asked for {name!r}, not the file being loaded")
                with open(allowed, "rb") as fh:
                    while True:
                        chunk = fh.read(size)
                        if not chunk:
                            break
                        conn.write_packet(chunk)
                        await conn._writer.drain()
            except BaseException:
                conn.close()  # the stream is cut mid-file: the connection cannot be reused
                raise
            conn.write_packet(b"")  # end of file
            ok = await conn._read_packet()
            if not ok.is_ok_packet():
                raise OperationalError(2014, "Commands Out of Sync")
            self._read_ok_packet(ok)

    class LoadConnection(amc.Connection):
        async def _read_query_result(self, unbuffered=False):
            if unbuffered:
                return await super()._read_query_result(unbuffered)
            self._result = None
            result = _Result(self)
            await result.read()
            self._result = result
            self._affected_rows = result.affected_rows
            if result.server_status is not None:
                self.server_status = result.server_status

    return LoadConnection

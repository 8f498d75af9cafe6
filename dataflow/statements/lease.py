"""The fabric's coordination tables on PostgreSQL (``db.start(coordination="postgresql")``): a lease
row per fabric with a fencing epoch, the shared product cache, webhook nonces and the requests
followers forward to the leader.

Every operation is ONE statement (no session state, no advisory locks), so it works through
PgBouncer in transaction pooling mode; expiry is compared with the server's clock
(``clock_timestamp()``), never a worker's.  Values are bound; table names come from the
fabric's checked prefix and are quoted.
"""

from __future__ import annotations

#: dialects these statements are written for (they use ON CONFLICT, RETURNING, FOR SHARE,
#: make_interval and clock_timestamp)
LEASE_DIALECTS = ("postgresql",)


class LeaseStatements:
    """SQL of the four coordination tables named ``<prefix>_lease``, ``_cache``, ``_nonce``,
    ``_request``.  Every statement takes the fabric's coordination key as ``$1``."""

    def __init__(self, d, prefix: str):
        q = d.quote
        self.lease, self.cache = q(prefix + "_lease"), q(prefix + "_cache")
        self.nonce, self.request = q(prefix + "_nonce"), q(prefix + "_request")
        L, C, N, R = self.lease, self.cache, self.nonce, self.request
        self.create = [
            f"CREATE TABLE IF NOT EXISTS {L} (name TEXT PRIMARY KEY, holder TEXT, epoch BIGINT NOT NULL, "
            f"expires_at TIMESTAMPTZ NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {C} (name TEXT NOT NULL, product TEXT NOT NULL, epoch BIGINT NOT NULL, "
            f"ver BIGINT NOT NULL, body BYTEA NOT NULL, cached_at DOUBLE PRECISION NOT NULL, "
            f"PRIMARY KEY (name, product))",
            f"CREATE TABLE IF NOT EXISTS {N} (name TEXT NOT NULL, nonce TEXT NOT NULL, "
            f"expires_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (name, nonce))",
            f"CREATE TABLE IF NOT EXISTS {R} (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, "
            f"payload TEXT NOT NULL, status TEXT, created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())",
            # the leader's poll for new requests reads only the waiting ones
            f"CREATE INDEX IF NOT EXISTS {q(prefix + '_request_waiting')} ON {R} (name, id) WHERE status IS NULL",
        ]
        # acquire: insert the row, or take it over when it has expired; each acquisition bumps the
        # epoch.  ON CONFLICT re-checks the WHERE on the newest row version, so of two workers
        # racing for an expired lease exactly one gets a row back.  ($1 key, $2 holder, $3 lease s)
        self.acquire = (
            f"INSERT INTO {L} AS l (name, holder, epoch, expires_at) "
            f"VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3)) "
            f"ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, epoch = l.epoch + 1, "
            f"expires_at = EXCLUDED.expires_at WHERE l.expires_at <= clock_timestamp() "
            f"RETURNING l.epoch")
        # the remaining lease of whoever holds it, in seconds (a follower wakes when it ends), and
        # its epoch
        self.remaining = (f"SELECT GREATEST(EXTRACT(EPOCH FROM expires_at - clock_timestamp()), 0), epoch "
                          f"FROM {L} WHERE name = $1")
        # renew: only the holder of this epoch, only while the lease has not run out ($4 lease s)
        self.renew = (f"UPDATE {L} SET expires_at = clock_timestamp() + make_interval(secs => $4) "
                      f"WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp() "
                      f"RETURNING epoch")
        self.release = (f"UPDATE {L} SET holder = NULL, expires_at = clock_timestamp() "
                        f"WHERE name = $1 AND holder = $2 AND epoch = $3")
        # the fenced cache write: lands only while ($6 holder, $3 epoch) holds an unexpired lease
        # (the lease row is share-locked, so a concurrent takeover is waited for and re-checked)
        # and no newer epoch has written the product.  ($2 product, $4 body, $5 cached_at)
        self.write = (
            f"INSERT INTO {C} AS c (name, product, epoch, ver, body, cached_at) "
            f"SELECT $1, $2, $3, 1, $4, $5 FROM {L} WHERE name = $1 AND holder = $6 AND epoch = $3 "
            f"AND expires_at > clock_timestamp() FOR SHARE "
            f"ON CONFLICT (name, product) DO UPDATE SET epoch = EXCLUDED.epoch, ver = c.ver + 1, "
            f"body = EXCLUDED.body, cached_at = EXCLUDED.cached_at WHERE c.epoch <= EXCLUDED.epoch "
            f"RETURNING c.ver")
        self.versions = f"SELECT product, ver FROM {C} WHERE name = $1"
        self.read = f"SELECT ver, epoch, body, cached_at FROM {C} WHERE name = $1 AND product = $2"
        # a nonce is claimed when absent or expired ($2 nonce, $3 ttl s)
        self.claim = (
            f"INSERT INTO {N} AS n (name, nonce, expires_at) "
            f"VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3)) "
            f"ON CONFLICT (name, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at "
            f"WHERE n.expires_at <= clock_timestamp() RETURNING 1")
        self.unclaim = f"DELETE FROM {N} WHERE name = $1 AND nonce = $2"
        self.purge_nonces = f"DELETE FROM {N} WHERE name = $1 AND expires_at <= clock_timestamp()"
        # forwarded requests: queued by any worker, taken by the leader (SKIP LOCKED: one taker)
        self.push = f"INSERT INTO {R} (name, kind, payload) VALUES ($1, $2, $3) RETURNING id"
        self.take = (
            f"UPDATE {R} SET status = 'taken' WHERE id IN (SELECT id FROM {R} WHERE name = $1 AND status IS NULL "
            f"ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING id, kind, payload")
        self.answer = f"UPDATE {R} SET status = $2 WHERE name = $1 AND id = $3"
        self.status = f"SELECT status FROM {R} WHERE name = $1 AND id = $2"
        self.forget = f"DELETE FROM {R} WHERE name = $1 AND id = $2"
        self.purge_requests = (f"DELETE FROM {R} WHERE name = $1 AND created_at < clock_timestamp() - "
                               f"make_interval(secs => $2)")

"""Kafka topics with aiokafka (optional extra ``[kafka]``):
``StreamSourceConfig(url="kafka://broker:9092", topic="events")``.

The reader consumes the topic from its earliest offset without a consumer group (nothing is
committed: the fabric only keeps the newest ``buffer_size`` messages).  A message is
``{"offset", "partition", "key", "value", "timestamp"}`` with the key and value decoded like
every stream message (JSON when it parses, else text).

SSRF: with the guard on, the bootstrap host is resolved once and every address checked before
aiokafka connects; aiokafka then connects by name and to the brokers the cluster's metadata
names, which the guard cannot pin -- keep ``allow_private`` for clusters you trust.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ...errors import ConfigurationError
from .stream import StreamSource, decode


class KafkaSource(StreamSource):
    def _bootstrap(self) -> str:
        parts = urlsplit(self.config.url)
        return f"{parts.hostname}:{parts.port or 9092}"

    async def _consumer(self):
        try:
            from aiokafka import AIOKafkaConsumer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigurationError("Kafka sources need aiokafka: pip install 'dataflow-native[kafka]'") from exc
        if self.guard is not None:
            parts = urlsplit(self.config.url)
            await self.guard.addresses(parts.hostname, parts.port or 9092)
        consumer = AIOKafkaConsumer(self.config.topic, bootstrap_servers=self._bootstrap(), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    request_timeout_ms=10000)
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def _session(self) -> None:
        consumer = await self._consumer()
        try:
            self._opened()
            async for msg in consumer:
                self._received({"offset": msg.offset, "partition": msg.partition,
                                "key": None if msg.key is None else decode(msg.key),
                                "value": None if msg.value is None else decode(msg.value),
                                "timestamp": msg.timestamp})
        finally:
            await consumer.stop()

    async def check(self) -> None:
        consumer = await self._consumer()
        await consumer.stop()

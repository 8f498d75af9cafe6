"""The document store: the same models, nodes, express calls and filters on MongoDB.

``client`` wraps the driver (pymongo's ``AsyncMongoClient``, imported lazily) or the in-process
stand-in (``standin``: mongomock behind the same async API, for ``testing=True``); ``codec``
maps model values to BSON and back; ``filters`` translates the one filter language; ``ids``
hands out integer ids; ``store`` implements the store protocol (``dataflow.store``) on a
collection (reads through the same query cache as SQL); ``bulk`` and ``load`` are the bulk
writes and ``db.load``'s path for it, atomic by a session transaction where the server has
them and by compensation elsewhere; ``transaction`` holds ``db.transaction()`` on MongoDB.
"""

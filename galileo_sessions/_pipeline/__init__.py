"""Delivery: records go from the caller into a pipeline, and from there to an exporter.

``pipeline.Pipeline`` is the facade the rest of the library uses. Fire-and-forget records go
through the ``worker.Worker`` (a background thread); reliable records are sent on the caller's
thread by the ``sender.Sender``, which both share. See ``docs/architecture.md``.

This package's ``__init__`` imports nothing: ``ops`` and ``stats`` are light and needed at
import time, while the sender, worker, spool and exporters load when the first pipeline is
built (keeping ``import galileo_sessions`` fast). Import from the submodules.
"""

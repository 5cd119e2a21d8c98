"""Listener queues a tool declares for itself on a RabbitMQ broker.

A tool that listens without a named pool (``listen``, ``latency``, the
demo) must not consume from ``<topic>.<priority>``: that queue belongs to
whoever else reads the topic (Ceilometer reads ``notifications.info``), and
two consumers of one queue split its messages. It listens on a one-off pool
instead (:func:`one_off_pool`): a queue of its own, bound to the same
routing keys, that the broker deletes as soon as its consumer goes, on a
clean exit, a crash or a ``kill -9`` alike.

oslo.messaging declares a pool's queue with ``auto_delete`` set to
``[oslo_messaging_rabbit] amqp_auto_delete``, but that option also sets
``auto_delete`` on the *exchange*, and an exchange declared by Nova without
it then refuses the tool's declaration (406 PRECONDITION_FAILED,
inequivalent arg 'auto_delete'). So the queue, and only the queue, of a
one-off pool is made auto-delete here, in this process, by name.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Iterable
from typing import Any

# a plain logger: its lines name queues and broker errors, never credentials
LOG = logging.getLogger(__name__)

#: a one-off queue that never got its consumer (the tool died between the
#: declaration and the consume) is deleted after this long unused
ONE_OFF_EXPIRES_MS = 60_000
# queue arguments a transient classic queue cannot take
_DURABLE_ONLY = (
    "x-queue-type",
    "x-delivery-limit",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
)
_one_off: set[str] = set()


def kombu_url(transport_url: str) -> str:
    """oslo.messaging's ``rabbit://`` URL in the ``amqp://`` form kombu wants."""
    for scheme in ("rabbit://", "kombu+rabbit://"):
        if transport_url.startswith(scheme):
            return "amqp://" + transport_url[len(scheme) :]
    return transport_url


def one_off_pool(tool: str) -> str:
    """A listener pool name for this process alone, its queue auto-deleted.

    Pass it as ``pool`` to ``oslo_messaging.get_notification_listener`` in
    this process: on the rabbit driver its queue is declared auto-delete and
    transient (and expires after :data:`ONE_OFF_EXPIRES_MS` if it never gets
    a consumer), so the broker removes it when the listener's connection
    goes. Named ``nova-notifier-<tool>-<host>-<pid>-<random>``.
    """
    host = socket.gethostname().split(".")[0] or "localhost"
    name = f"nova-notifier-{tool}-{host}-{os.getpid()}-{secrets.token_hex(4)}"
    _make_one_off_queues_auto_delete()
    _one_off.add(name)
    return name


def _make_one_off_queues_auto_delete() -> None:
    """Have the rabbit driver declare one-off pools' queues auto-delete."""
    from oslo_messaging._drivers import impl_rabbit

    base = impl_rabbit.Consumer
    if getattr(base, "_one_off_aware", False):
        return

    class _Consumer(base):  # type: ignore[misc, valid-type]
        _one_off_aware = True

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            if self.queue_name in _one_off:
                self.queue_auto_delete = True
                self.durable = False  # the exchange was built already
                given: Any = getattr(self, "queue_arguments", None)
                arguments: dict[str, Any] = dict(given or {})
                for key in _DURABLE_ONLY:
                    arguments.pop(key, None)
                arguments["x-expires"] = ONE_OFF_EXPIRES_MS
                self.queue_arguments = arguments

    impl_rabbit.Consumer = _Consumer


def delete_queues(transport_url: str, names: Iterable[str]) -> int:
    """Delete the named queues (missing ones are fine); returns how many went.

    Only for queues a tool or test declared for its own use, such as a
    named pool a test made: never for queues other consumers rely on.
    """
    import kombu

    deleted = 0
    with kombu.Connection(kombu_url(transport_url)) as conn:
        for name in names:
            channel = conn.channel()
            try:
                channel.queue_delete(name)
                deleted += 1
            except Exception as exc:  # the queue may never have existed
                LOG.debug("queue %s not deleted: %s", name, exc)
            finally:
                try:
                    channel.close()
                except Exception as exc:  # a channel closed by the broker
                    LOG.debug("closing channel: %s", exc)
    return deleted

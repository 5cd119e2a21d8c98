"""Removing listener queues a tool created for itself on a RabbitMQ broker."""

from __future__ import annotations

from collections.abc import Iterable

from nova_notifier._log import get_logger

LOG = get_logger(__name__)


def kombu_url(transport_url: str) -> str:
    """oslo.messaging's ``rabbit://`` URL in the ``amqp://`` form kombu wants."""
    for scheme in ("rabbit://", "kombu+rabbit://"):
        if transport_url.startswith(scheme):
            return "amqp://" + transport_url[len(scheme) :]
    return transport_url


def delete_queues(transport_url: str, names: Iterable[str]) -> int:
    """Delete the named queues (missing ones are fine); returns how many went.

    Only for queues a tool or test declared for its own use, such as a
    one-off listener pool: never for queues other consumers rely on.
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

"""VM provisioning latency from Nova-style notifications.

:class:`Tracker` takes notifications (received, or JSON lines written by
``nova-notifier listen --json``) and keeps each instance's phase events;
:func:`analyse` cuts them into boots, rebuilds and deletes; :func:`build`
turns those into the report that ``nova-notifier latency`` prints.
"""

from nova_notifier.tools.latency.events import Tracker
from nova_notifier.tools.latency.report import Analysis, analyse, build, render_text

__all__ = ["Analysis", "Tracker", "analyse", "build", "render_text"]

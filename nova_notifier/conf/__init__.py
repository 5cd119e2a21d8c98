"""The library's options, in leaf modules: they import nothing of the library.

``[DEFAULT]`` options live in :mod:`nova_notifier.conf.default`,
``[notifications]`` ones in :mod:`nova_notifier.conf.notifications` (the
delivery tuning options with their sender, in ``nova_notifier.delivery``).
:func:`nova_notifier.opts.list_opts` lists them all for oslo-config-generator;
``init()`` registers them and reads them into a settings snapshot.
"""

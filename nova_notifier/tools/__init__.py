"""The ``nova-notifier`` command-line tools, apart from the library.

Nothing in the library imports this package, so ``import nova_notifier``
never loads it; and the tools use only the library's public API (the names
:mod:`nova_notifier` exports) and each other. ``tests/test_package.py``
checks both.
"""

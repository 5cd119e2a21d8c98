"""Helpers for testing services that use nova_notifier (fault injection)."""

"""A module for the monkey_patch tests to wrap (imported as ``patch_target``).

Every callable here records nothing itself: the tests tell a wrapped call
from an unwrapped one by the notifications that arrive and by identity.
"""

from __future__ import annotations

from json import JSONEncoder as ImportedClass  # imported: must not be wrapped
from textwrap import dedent as imported_function  # imported: must not be wrapped

__all__ = [
    "Base",
    "Child",
    "ImportedClass",
    "Service",
    "add",
    "greet",
    "imported_function",
]


def add(a, b):
    return a + b


def greet(name, punctuation="!"):
    return f"hello {name}{punctuation}"


class Service:
    label = "a class attribute, not a method"

    def __init__(self, base):
        self.base = base

    def __repr__(self):
        return f"Service({self.base})"

    def scale(self, factor):
        return self.base * factor

    @staticmethod
    def double(value):
        return value * 2

    @classmethod
    def build(cls, base):
        return cls(base)

    @property
    def doubled_base(self):
        return self.base * 2


class Base:
    def describe(self, suffix):
        return f"{type(self).__name__}:{suffix}"


class Child(Base):
    def own(self):
        return "own"

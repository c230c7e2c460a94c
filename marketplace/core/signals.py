"""Named signals: how an earlier feature tells a later one, or asks it, without importing it.

Features depend in one order (core → accounts → registry → footprint → orders → certificates → stats →
demo). When an earlier feature must tell a later one that something happened (an order completed), it
sends a named blinker signal and the later feature subscribes in its own package; receivers run
synchronously, inside the sender's transaction, so figures that must agree are written together. When
an earlier feature needs an answer only a later one has (the certificate of an order), it asks with
:func:`ask`, and the later feature answers.
"""

from __future__ import annotations

from blinker import Namespace, Signal

signals = Namespace()


def ask(signal: Signal, **kwargs):
    """The first answer (not None) of the signal's receivers, or None when none answers."""
    for _receiver, answer in signal.send(**kwargs):
        if answer is not None:
            return answer
    return None

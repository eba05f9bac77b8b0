"""The sandbox: where student code runs, and the only way the trusted side talks to it.

``parent.py`` runs in the trusted process (starts, limits, calls and stops the worker);
``child.py`` is the worker itself; ``protocol.py`` is the wire format both sides speak.
Nothing in ``child.py`` or ``protocol.py`` may import the trusted side (``tests/grader/test_layout.py``).
"""

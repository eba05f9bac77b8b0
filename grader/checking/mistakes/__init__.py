"""Known mistakes, computed on the trusted side.

Each function takes the reference weights and inputs a check used and returns, per diagnosis id,
the output a student who made that mistake would get. When the student's output equals one of
them, the failure names the mistake (message ``diagnosis.<id>`` in the catalog). The grader's own
tests prove each diagnosis fires on a buggy variant of the solutions.
"""

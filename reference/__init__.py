"""A complete, readable reference implementation of "Build a Large Language Model (From Scratch)".

One module per chapter (``ch02`` ... ``ch07``, ``appendix_a``, ``appendix_d``, ``appendix_e``),
with the book's public names and signatures. The grader compares student code against it.
"""

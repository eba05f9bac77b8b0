"""llmgrade: the grader for "Build a Large Language Model (From Scratch)" exercises."""

__version__ = "0.1.0"

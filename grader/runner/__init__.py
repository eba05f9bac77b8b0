"""Grading one submission: start the trusted pytest process, read its signed results, score them,
and print them (``llmgrade grade`` and ``llmgrade check``)."""

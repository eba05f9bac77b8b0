# Your exercises for "Build a Large Language Model (From Scratch)", one module per chapter; run
# `llmgrade list` to see them.
#

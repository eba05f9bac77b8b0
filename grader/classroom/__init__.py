"""Keeping and sharing grades: the gradebook, a workspace's history, class grading in parallel,
safe unzipping of submissions, and the CSV/Gradescope exports."""

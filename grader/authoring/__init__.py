"""Authoring the exercises: the stub generator (solutions -> exercises), student workspaces,
where the installed packages live, and the catalog listing."""

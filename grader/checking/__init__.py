"""What only the trusted side runs: the pytest plugin and fixtures, check bodies, comparisons,
tolerances, failures and the named mistakes. The sandboxed worker never imports this package."""

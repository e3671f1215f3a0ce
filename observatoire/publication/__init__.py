"""Publication layer: the month's snapshot switched atomically, and partner bundles."""

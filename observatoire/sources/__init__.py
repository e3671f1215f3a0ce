"""Sources layer: SIRENE stock files, reference data and the inbox (waves, network lists)
read as they come, into `raw`."""

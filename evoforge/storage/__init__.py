"""The run directory and what is stored in it: RunDir and atomic writes, the manifest, the typed
records and the store of a round's files. The lowest of the three run layers (storage < round <
driver): it imports neither of the others."""

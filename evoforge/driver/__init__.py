"""What runs rounds and reports on them: preflight and the resource plan, the runner,
termination, leftovers of a killed driver, trackers and the report."""

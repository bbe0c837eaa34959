"""Writing: platform text rules, uniqueness checks and the offline persona writer."""

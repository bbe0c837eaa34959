"""Posts: drafts a person (or a rule) writes, reviews and schedules; scheduling creates the publications."""

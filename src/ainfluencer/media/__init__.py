"""Media studio: safe image loading, quality gates, AI provenance and video composition."""

"""Content requests: sales asks marketing for content that does not exist yet."""

"""The storage layer: sessions and every query, named by verbs. Only this package writes a post's status."""

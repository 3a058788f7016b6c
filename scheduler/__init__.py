"""promo-scheduler: records → Jinja2 posts → scheduled publishing → history."""

__version__ = "0.1.0"

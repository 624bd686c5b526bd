"""A browser playground for Segmind's GPT Image 1 Edit Mini: everything but the page itself."""

__version__ = "0.1.0"  # keep equal to pyproject.toml's version

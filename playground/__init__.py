"""A browser playground for Segmind's GPT Image 1 Edit Mini: everything but the page itself."""

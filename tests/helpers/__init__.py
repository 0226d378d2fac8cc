"""Helpers the tests share, imported by name (``from helpers.video import make_video``)."""

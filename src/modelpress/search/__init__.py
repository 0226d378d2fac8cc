"""Searching whole pipelines under a budget (``modelpress optimize``)."""

"""Pledge-backed financing: requests, offers, loans against a pledged document (``flow.py``)."""

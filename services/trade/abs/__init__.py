"""Securitisation: loans and receivables pooled into tranches paid by an exact waterfall (``flow.py``)."""

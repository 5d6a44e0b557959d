"""Escrowed payment: the buyer's tokens held for the seller until delivery is confirmed (``flow.py``)."""

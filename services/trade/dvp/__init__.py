"""Cash against documents: delivery of a title versus payment in tokens, as one outcome (``flow.py``)."""

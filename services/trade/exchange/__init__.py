"""The exchange: an order book per pair, limit orders on managed holds, every match settled in the
block (``flow.py``; the matcher itself is ``traco.services.trade.orderbook``)."""

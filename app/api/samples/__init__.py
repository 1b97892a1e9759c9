"""The sample store's reads: decoding (store), time windows, a registration's signals, the
worker's exits, the observer's counts; and the rates route."""

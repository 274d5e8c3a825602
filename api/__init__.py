"""The stream settings API: destinations, data inclusion, status, tokens."""

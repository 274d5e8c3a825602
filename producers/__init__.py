"""The producer SDK and the activity simulator."""

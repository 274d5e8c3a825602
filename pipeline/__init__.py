"""The router: inclusion settings, routing, dead letters, and the log it runs on."""

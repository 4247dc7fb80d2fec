"""Slack edges: the shared sender, the WSGI app and `crsbot serve` (HTTP or Socket Mode)."""

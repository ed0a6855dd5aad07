"""The web page: `coordsr serve` (see app.py and docs/web.md)."""

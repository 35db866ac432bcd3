"""Bitfolio web dashboard (NiceGUI)."""

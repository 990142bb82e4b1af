"""Code that console/settings.py uses to read its settings (see env.py)."""

"""Platform adapters: one module per network, all behind PlatformAdapter (see base.py)."""

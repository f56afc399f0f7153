"""Certificate inventory and connector settings (readers in the submodules; ``reader`` is the
entry point that finds files and recognises their format)."""

"""Executing planned calls: the on-disk response cache and the concurrent runner."""

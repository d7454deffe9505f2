"""Preloaded by the fork server of the generator's worker processes (and imported nowhere else): the
per-process tables are built once there, and every worker forked from it starts with them."""

from familycard.synth.generate import warm_caches

warm_caches()

"""Families for the card: who lives together and shares a budget, built from the civil registry's acts
and the address register's registrations (with the health, housing and property registers as witnesses
of moves the address register missed). ``run_families`` is the stage; ``docs/methodology/families.md``
is the methodology; :mod:`familycard.families.evaluate` scores a build against a synthetic nation."""

from familycard.families.stage import OUTPUTS, FamilyReport, run_families

__all__ = ["OUTPUTS", "FamilyReport", "run_families"]

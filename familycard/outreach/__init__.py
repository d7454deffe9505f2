"""Outreach: the SMS outbox and its gateways (offers, consents and payments come with later stages)."""

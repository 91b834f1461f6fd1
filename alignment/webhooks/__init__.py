"""Signed webhooks out, fed by the lead-event outbox."""

"""Migrations from legacy stores; `sessions-to-accounts` moves `whatsapp_sessions` into the accounts table."""

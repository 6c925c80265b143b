"""Payments through Stripe Connect: connected accounts, saved cards, charges, webhooks, retries."""

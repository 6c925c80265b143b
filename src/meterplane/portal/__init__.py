"""The customer portal: one-time links, magic links, the customer's usage, invoices and card."""

"""Client side of the dunning workflows: starting them, and fanning a customer's
decisions out to its invoices. Not workflow code: it may use the ledger."""

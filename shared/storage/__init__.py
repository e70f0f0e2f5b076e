"""Table Storage stores: ledger, aliases, campaign state, activity index, pending items."""

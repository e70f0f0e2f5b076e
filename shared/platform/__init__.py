"""Platform: settings, logs, errors, HTTP shaping, correlation ids, the one Azure credential."""

"""One ComponentResource per concern: networks, TLS material, secrets, Redis, the app."""

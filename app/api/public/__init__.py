"""The routes any caller may ask without a token: `/health`, `/auth` (who am I), `/rules`."""

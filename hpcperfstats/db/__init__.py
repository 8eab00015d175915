"""PostgreSQL access: connection URL, embedded server, schema, bulk loads."""

"""Provider users: console logins with a role (owner, billing, viewer)."""

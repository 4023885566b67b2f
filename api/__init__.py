"""The management API: users, workspaces, members, invitations, API keys, usage."""

"""What each command does between parsing (``qctl.cli``) and rendering: one module per command."""

"""Chat with a base model or a finished run, through one long-lived worker process (no torch here)."""

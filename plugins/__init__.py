"""Built-in plugins shipped with avain: pilots, payment backends, evaluation."""

"""Authentication, authorization, audit log and encrypted secrets (imports only ``core`` and ``store``)."""

"""The audit trail: one function writes every event; chains make tampering visible."""

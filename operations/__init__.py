"""Operations: what sees the whole product at once (the staff dashboard, the soak)."""

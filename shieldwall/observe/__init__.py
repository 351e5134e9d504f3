"""Operations: Prometheus metrics read from the store, and structured JSON logs."""

"""reservation: quotes, the booking saga, confirmation, expiry, cancellation and completion."""

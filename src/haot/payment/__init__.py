"""payment: payments for reservations through PortOne V2, webhooks, refunds, reconciliation."""

"""coupon: coupon templates, user coupons, and first-come-first-served coupon events."""

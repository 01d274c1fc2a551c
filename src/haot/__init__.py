"""haot: How About Over There, an accommodation booking platform."""

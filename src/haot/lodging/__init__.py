"""lodging: properties, room types, the per-night calendar of price and inventory, and search."""

"""Errors of the lodging context, each with a stable code."""

from __future__ import annotations

from haot.platform.errors import Conflict, InvalidInput, NotFound


class LodgingNotFound(NotFound):
    code = "lodging_not_found"
    title = "Lodging not found"


class RoomTypeNotFound(NotFound):
    code = "room_type_not_found"
    title = "Room type not found"


class PriceRequired(InvalidInput):
    code = "price_required"
    title = "Opening nights needs a price"


class InvalidDates(InvalidInput):
    code = "invalid_dates"
    title = "Invalid dates"


class InvalidStay(InvalidInput):
    code = "invalid_stay"
    title = "Invalid stay"


class InventoryConflict(Conflict):
    code = "inventory_conflict"
    title = "The change would strand existing bookings"


class InventoryExceedsRooms(InvalidInput):
    code = "inventory_exceeds_rooms"
    title = "A night cannot offer more rooms than the room type has"


class LodgingHasBookings(Conflict):
    code = "lodging_has_bookings"
    title = "Upcoming nights have bookings"


class InvalidMonth(InvalidInput):
    code = "invalid_month"
    title = "month must be YYYY-MM"

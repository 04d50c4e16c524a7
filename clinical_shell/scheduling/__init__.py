"""Operation bookings, checked against the surgeon's privileges and the institution's licence."""

"""Operation bookings, checked against surgeons' privileges and institutions' licences."""

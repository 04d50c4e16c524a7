"""Planning on the patient's CT: annotations, plans and their elements, checks, rehearsal."""

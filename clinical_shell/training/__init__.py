"""Graded training: modules, curricula, assignments, progress from verified station scores, replay videos."""

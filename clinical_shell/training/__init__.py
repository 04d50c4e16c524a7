"""Graded training: modules, curricula, assignments, progress from verified scores, replays."""

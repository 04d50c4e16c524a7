"""A cheap argon2 variant for the test suite only (settings add it when running under pytest)."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    # same algorithm and encoding as production, minimal cost: stored hashes still say argon2
    time_cost = 1
    memory_cost = 64
    parallelism = 1

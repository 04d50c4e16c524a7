"""Network app: institutions of the regional network, departments, people and their roles."""

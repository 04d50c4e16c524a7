"""Data the simulator loads: instrument and scenario definitions, built patient cases."""

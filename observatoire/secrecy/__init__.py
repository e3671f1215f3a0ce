"""Secrecy layer: statistical secrecy of the tables built from confidential inputs."""
